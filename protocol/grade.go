package protocol

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Grade is the four-level warning grade of the city's policy, red being the
// most severe (一级 red, 二级 orange, 三级 yellow, 四级 blue). The zero value
// means no warning. Grades compare by severity: Red > Orange > Yellow > Blue > None.
type Grade uint8

// Grades, in rising severity.
const (
	None Grade = iota
	Blue
	Yellow
	Orange
	Red
)

var gradeNames = [...]string{"none", "blue", "yellow", "orange", "red"}
var gradeNamesZH = [...]string{"正常", "蓝色预警", "黄色预警", "橙色预警", "红色预警"}

// String returns the English name: none, blue, yellow, orange, red.
func (g Grade) String() string {
	if int(g) < len(gradeNames) {
		return gradeNames[g]
	}
	return fmt.Sprintf("grade(%d)", uint8(g))
}

// Chinese returns the grade's Chinese name, e.g. 红色预警.
func (g Grade) Chinese() string {
	if int(g) < len(gradeNamesZH) {
		return gradeNamesZH[g]
	}
	return g.String()
}

// Valid reports whether g is one of the five defined values.
func (g Grade) Valid() bool { return g <= Red }

// Raise returns the grade n steps more severe, never above Red; None stays None.
func (g Grade) Raise(n int) Grade {
	if g == None {
		return None
	}
	r := int(g) + n
	if r > int(Red) {
		r = int(Red)
	}
	return Grade(r)
}

// MarshalText writes the English name.
func (g Grade) MarshalText() ([]byte, error) {
	if !g.Valid() {
		return nil, fmt.Errorf("invalid grade %d", uint8(g))
	}
	return []byte(g.String()), nil
}

// UnmarshalText reads an English name.
func (g *Grade) UnmarshalText(b []byte) error {
	v, err := ParseGrade(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// ParseGrade reads none, blue, yellow, orange or red.
func ParseGrade(s string) (Grade, error) {
	for i, n := range gradeNames {
		if n == s {
			return Grade(i), nil
		}
	}
	return None, fmt.Errorf("unknown grade %q (want red, orange, yellow, blue or none)", s)
}

// UnmarshalYAML reads a grade name in a policy file; a wrong name is
// reported as a type error so that the file's other problems are still found.
func (g *Grade) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseGrade(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: unknown grade %q (want red, orange, yellow, blue or none)", n.Line, n.Value)}}
	}
	*g = v
	return nil
}
