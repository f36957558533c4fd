// Package i18n turns HazardWatch's structured events into words for
// people, in the reader's language. The words live in one message catalog
// per language (zh.json, en.json beside this file, embedded); the core
// (rules, alerting) emits facts only, and the edges — the console, the
// demo terminal, each webhook receiver — render them here. To add a
// language, add its catalog file and its Lang; to add a message, add its
// key to every catalog (TestCatalogsHaveTheSameKeys checks).
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
)

// Lang is a catalog language.
type Lang string

// Languages with a catalog. Chinese is the default: the language of the
// officers on duty and of the standards.
const (
	ZH Lang = "zh"
	EN Lang = "en"
)

// Langs lists the languages with a catalog, the default first.
var Langs = []Lang{ZH, EN}

//go:embed zh.json en.json
var files embed.FS

var catalogs = map[Lang]map[string]string{}

func init() {
	for _, l := range Langs {
		b, err := files.ReadFile(string(l) + ".json")
		if err != nil {
			panic(fmt.Sprintf("i18n: catalog %s: %v", l, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("i18n: catalog %s.json: %v", l, err))
		}
		catalogs[l] = m
	}
}

// Parse reads a language setting: "zh", "en", a tag such as "zh-CN" or
// "en-US", or empty for the default (zh).
func Parse(s string) (Lang, error) {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "-")
	base, _, _ = strings.Cut(base, "_")
	if base == "" {
		return ZH, nil
	}
	for _, l := range Langs {
		if string(l) == base {
			return l, nil
		}
	}
	return ZH, fmt.Errorf("language %q has no message catalog (have %v)", s, Langs)
}

// Catalog returns a copy of a language's catalog (the default's for an
// unknown language), e.g. to serve it to a browser.
func Catalog(l Lang) map[string]string {
	c, ok := catalogs[l]
	if !ok {
		c = catalogs[ZH]
	}
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Args are the named values of a message: {name} in a template is
// Args["name"].
type Args map[string]string

// T renders the message key in language l with args. A key missing from l
// falls back to Chinese, then to the key itself, so a message is never lost.
func T(l Lang, key string, args Args) string {
	s, ok := catalogs[l][key]
	if !ok {
		if s, ok = catalogs[ZH][key]; !ok {
			s = key
		}
	}
	if len(args) == 0 || !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		name := s[i+1 : i+j]
		if v, ok := args[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// Has reports whether language l's catalog has key.
func Has(l Lang, key string) bool {
	_, ok := catalogs[l][key]
	return ok
}
