package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a site file; a larger one is refused before parsing.
const MaxFileSize = 16 << 20

// Problem is one thing wrong with a site file, with where it is.
type Problem struct {
	File   string
	Line   int
	Column int
	Field  string // path of the field, e.g. sources[0].points[2].limits.hh
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one or more site files. It is the error
// Load and LoadDir return when a file is not valid.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, checks and returns one site file. When the file is not valid
// the error is a Problems listing everything wrong with it.
func Load(path string) (*Site, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open site file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat site file %s: %w", path, err)
	}
	if st.Size() > MaxFileSize {
		return nil, Problems{{File: path, Msg: fmt.Sprintf("file is %d bytes, more than the %d a site file may have", st.Size(), MaxFileSize)}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read site file: %w", err)
	}
	return data, nil
}

// LoadDir loads every *.yaml and *.yml file of a directory, in name order.
// Problems of all files are returned together; site ids must be unique
// across the files.
func LoadDir(dir string) ([]*Site, error) {
	var names []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, fmt.Errorf("list site files in %s: %w", dir, err)
		}
		names = append(names, m...)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no site files (*.yaml) in %s", dir)
	}
	return LoadFiles(names...)
}

// LoadFiles loads several site files; problems of all of them are returned
// together, and site ids must be unique across them.
func LoadFiles(paths ...string) ([]*Site, error) {
	var sites []*Site
	var all Problems
	seen := map[string]string{}
	for _, name := range paths {
		s, err := Load(name)
		var ps Problems
		switch {
		case errors.As(err, &ps):
			all = append(all, ps...)
			continue
		case err != nil:
			return nil, err
		}
		if prev, dup := seen[s.ID]; dup {
			all = append(all, Problem{File: name, Field: "id", Msg: fmt.Sprintf("site id %q is already used by %s", s.ID, prev)})
			continue
		}
		seen[s.ID] = name
		sites = append(sites, s)
	}
	if len(all) > 0 {
		return nil, all
	}
	return sites, nil
}

// Parse checks and returns a site from the bytes of a file; name is used in
// problems.
func Parse(name string, data []byte) (*Site, error) {
	p := &parser{file: name, nodes: map[string]*yaml.Node{}}
	if ps := checkText(name, data); ps != nil {
		return nil, ps
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: name, Line: 1, Column: 1, Msg: "file holds only comments: a site file describes one site (see docs/site-file.md)"}}
		}
		return nil, Problems{p.yamlProblem(err)}
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{File: name, Line: 1, Column: 1, Msg: "file is empty"}}
	}
	p.secondDocument(dec)
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Problems{{File: name, Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("a site file is a mapping of keys (id: …, name: …), not %s", nodeKind(root))}}
	}
	p.checkKeys(root, reflect.TypeOf(Site{}), "")

	var s Site
	if err := root.Decode(&s); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Problems{p.yamlProblem(err)}
		}
		for _, msg := range te.Errors {
			p.addTypeError(msg)
		}
	}
	s.File = name
	applyDefaults(&s)
	applyPersonDefaults(&s)
	p.validate(&s)
	p.validateStrict(&s)
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool {
			a, b := p.problems[i], p.problems[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, p.problems
	}
	s.index()
	return &s, nil
}

// nodeKind names a YAML node's kind for problems.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "this"
}

type parser struct {
	file     string
	nodes    map[string]*yaml.Node // field path → its value node
	keys     map[string]*yaml.Node // field path → its key node
	problems Problems
	broken   []string // paths whose value could not be decoded
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (p *parser) yamlProblem(err error) Problem {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: p.file, Line: line, Msg: m[2]}
	}
	return Problem{File: p.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// addTypeError records a decoding error and the field it belongs to.
func (p *parser) addTypeError(msg string) {
	pr := p.yamlProblem(errors.New(msg))
	// The deepest field whose value starts on that line is the culprit.
	best := ""
	for path, n := range p.nodes {
		if n.Line == pr.Line && len(path) > len(best) {
			best = path
		}
	}
	pr.Field = best
	if best != "" {
		pr.Column = p.nodes[best].Column
		p.broken = append(p.broken, best)
	}
	pr.Msg = strings.ReplaceAll(pr.Msg, "!!str ", "text ")
	p.problems = append(p.problems, pr)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks the document against the Go types, reporting unknown keys
// and remembering where every field is.
func (p *parser) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	if p.keys == nil {
		p.keys = map[string]*yaml.Node{}
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	p.nodes[path] = n
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			sub := joinPath(path, k.Value)
			if !ok {
				p.problems = append(p.problems, Problem{
					File: p.file, Line: k.Line, Column: k.Column, Field: sub,
					Msg: fmt.Sprintf("unknown key %q (known keys: %s)", k.Value, strings.Join(sortedKeys(fields), ", ")),
				})
				continue
			}
			p.keys[sub] = k
			p.checkKeys(v, f.Type, sub)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			p.checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields is a struct type's fields by YAML key, worked out once per
// type: checkKeys asks for every mapping, tens of thousands in a city's
// site files, where it was a fifth of the load time. The maps are only read.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldsByType.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m, _ := fieldsByType.LoadOrStore(t, structFields(t))
	return m.(map[string]reflect.StructField)
}

var fieldsByType sync.Map // reflect.Type → map[string]reflect.StructField

func structFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		out[tag] = f
	}
	return out
}

func sortedKeys(m map[string]reflect.StructField) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errorf records a semantic problem at a field path; the line is that of the
// field's value, or of the nearest enclosing field present in the file.
func (p *parser) errorf(path, format string, args ...any) {
	for _, b := range p.broken {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return // already reported as undecodable; do not pile on
		}
	}
	pr := Problem{File: p.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	for q := path; ; q = parentPath(q) {
		if n, ok := p.nodes[q]; ok && (q != "" || path == "") {
			pr.Line, pr.Column = n.Line, n.Column
			if k, ok := p.keys[q]; ok && n.Kind != yaml.ScalarNode {
				pr.Line, pr.Column = k.Line, k.Column
			}
			break
		}
		if q == "" {
			// A key missing at the top: point at the site's start.
			if n, ok := p.nodes[""]; ok {
				pr.Line, pr.Column = n.Line, n.Column
			}
			break
		}
	}
	p.problems = append(p.problems, pr)
}

// parentPath drops the last element of a field path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// index builds the look-up maps of a valid site.
func (s *Site) index() {
	s.points = map[string]*PointRef{}
	s.devices = map[string]*Device{}
	for gi := range s.Gateways {
		for di := range s.Gateways[gi].Devices {
			d := &s.Gateways[gi].Devices[di]
			s.devices[d.ID] = d
		}
	}
	for si := range s.Sources {
		src := &s.Sources[si]
		for pi := range src.Points {
			pt := &src.Points[pi]
			s.points[pt.ID] = &PointRef{Site: s, Source: src, Point: pt, Device: s.devices[pt.Modbus.Device]}
		}
	}
}
