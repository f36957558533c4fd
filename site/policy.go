package site

import (
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Policy says which warning grade each kind of condition earns. It is data:
// the default below follows shared/domain.md (the city's four-grade warning
// policy); a site file may override any field for the whole site, and a
// source for itself. Unset fields inherit.
type Policy struct {
	// FirstLevel grades one point at H or L (一级报警).
	FirstLevel *protocol.Grade `yaml:"first_level"`
	// SecondLevel grades one point at HH or LL (二级报警).
	SecondLevel *protocol.Grade `yaml:"second_level"`
	// Stale grades a point whose data stopped arriving.
	Stale *protocol.Grade `yaml:"stale"`
	// Fault grades a faulty sensor: quality bad, NAMUR out of range, stuck.
	Fault *protocol.Grade `yaml:"fault"`
	// RateOfChange grades a point changing faster than its rate limit.
	RateOfChange *protocol.Grade `yaml:"rate_of_change"`
	// SecondLevelRising grades a second-level condition whose value keeps
	// rising.
	SecondLevelRising *protocol.Grade `yaml:"second_level_rising"`
	// PowerOff grades a coal-mine power-off (断电) limit reached.
	PowerOff *protocol.Grade `yaml:"power_off"`
	// FirstLevelHeld grades a first-level condition held longer than For.
	FirstLevelHeld *HeldRule `yaml:"first_level_held"`
	// FirstLevelPoints grades Count or more points of one source at first
	// level (or worse) at once.
	FirstLevelPoints *CountRule `yaml:"first_level_points"`
	// SecondLevelPoints grades Count or more points of one source at second
	// level at once.
	SecondLevelPoints *CountRule `yaml:"second_level_points"`
	// VoteFirstLevel grades a k-of-n vote satisfied at first level.
	VoteFirstLevel *protocol.Grade `yaml:"vote_first_level"`
	// VoteSecondLevel grades a k-of-n vote satisfied at second level.
	VoteSecondLevel *protocol.Grade `yaml:"vote_second_level"`
	// EscalateSourceGrades lists the GB 18218 grades of sources whose
	// warnings are one step more severe (never above red).
	EscalateSourceGrades []int `yaml:"escalate_source_grades"`
}

// HeldRule grades a condition that lasts longer than For.
type HeldRule struct {
	For   Duration       `yaml:"for"`
	Grade protocol.Grade `yaml:"grade"`
}

// CountRule grades Count or more simultaneous conditions.
type CountRule struct {
	Count int            `yaml:"count"`
	Grade protocol.Grade `yaml:"grade"`
}

func gradePtr(g protocol.Grade) *protocol.Grade { return &g }

// DefaultPolicy is the grading policy of shared/domain.md:
//
//	blue:   one point at first level; a point's data lost or its sensor faulty
//	yellow: one point at second level; first level held over 10 min; two points at first level
//	orange: two points at second level; a k-of-n vote at first level; second level still rising
//	red:    a k-of-n vote at second level; a coal-mine power-off limit reached
//
// then one step more severe for a GB 18218 grade 1 or 2 source.
func DefaultPolicy() Policy {
	return Policy{
		FirstLevel:           gradePtr(protocol.Blue),
		SecondLevel:          gradePtr(protocol.Yellow),
		Stale:                gradePtr(protocol.Blue),
		Fault:                gradePtr(protocol.Blue),
		RateOfChange:         gradePtr(protocol.Blue),
		SecondLevelRising:    gradePtr(protocol.Orange),
		PowerOff:             gradePtr(protocol.Red),
		FirstLevelHeld:       &HeldRule{For: Duration(10 * time.Minute), Grade: protocol.Yellow},
		FirstLevelPoints:     &CountRule{Count: 2, Grade: protocol.Yellow},
		SecondLevelPoints:    &CountRule{Count: 2, Grade: protocol.Orange},
		VoteFirstLevel:       gradePtr(protocol.Orange),
		VoteSecondLevel:      gradePtr(protocol.Red),
		EscalateSourceGrades: []int{1, 2},
	}
}

// Merge returns p with every field that o sets replaced by o's.
func (p Policy) Merge(o *Policy) Policy {
	if o == nil {
		return p
	}
	set := func(dst **protocol.Grade, src *protocol.Grade) {
		if src != nil {
			*dst = src
		}
	}
	set(&p.FirstLevel, o.FirstLevel)
	set(&p.SecondLevel, o.SecondLevel)
	set(&p.Stale, o.Stale)
	set(&p.Fault, o.Fault)
	set(&p.RateOfChange, o.RateOfChange)
	set(&p.SecondLevelRising, o.SecondLevelRising)
	set(&p.PowerOff, o.PowerOff)
	set(&p.VoteFirstLevel, o.VoteFirstLevel)
	set(&p.VoteSecondLevel, o.VoteSecondLevel)
	if o.FirstLevelHeld != nil {
		p.FirstLevelHeld = o.FirstLevelHeld
	}
	if o.FirstLevelPoints != nil {
		p.FirstLevelPoints = o.FirstLevelPoints
	}
	if o.SecondLevelPoints != nil {
		p.SecondLevelPoints = o.SecondLevelPoints
	}
	if o.EscalateSourceGrades != nil {
		p.EscalateSourceGrades = o.EscalateSourceGrades
	}
	return p
}

// Effective is the policy in force for a source: the default, then the
// site's override, then the source's.
func (s *Site) Effective(src *Source) Policy {
	return DefaultPolicy().Merge(s.Policy).Merge(src.Policy)
}

// Escalates reports whether warnings of a source of the given GB 18218 grade
// are raised one step.
func (p Policy) Escalates(sourceGrade int) bool {
	for _, g := range p.EscalateSourceGrades {
		if g == sourceGrade {
			return true
		}
	}
	return false
}
