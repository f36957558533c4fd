package site

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
)

// Responsible names the three persons answerable for a major hazard source
// under MEM's 2021 responsibility system for hazardous-chemical major
// hazard sources (危险化学品企业重大危险源安全包保责任制): warnings of the
// source reach them by grade and by time unacknowledged (docs/alerting.md).
type Responsible struct {
	Principal   *Person `yaml:"principal"`   // 主要负责人: the enterprise's head
	Technical   *Person `yaml:"technical"`   // 技术负责人: process or equipment lead
	Operational *Person `yaml:"operational"` // 操作负责人: the shift or unit lead
}

// Role is one of the three responsibilities.
type Role string

// The roles of Responsible.
const (
	Principal   Role = "principal"
	Technical   Role = "technical"
	Operational Role = "operational"
)

// Roles lists the roles from the closest to the source to the most senior,
// the order a warning escalates in.
var Roles = []Role{Operational, Technical, Principal}

// Person returns the person holding a role, or nil.
func (r *Responsible) Person(role Role) *Person {
	if r == nil {
		return nil
	}
	switch role {
	case Principal:
		return r.Principal
	case Technical:
		return r.Technical
	case Operational:
		return r.Operational
	}
	return nil
}

// Person is someone warnings are sent to.
type Person struct {
	Name  string `yaml:"name"`
	Phone string `yaml:"phone"` // mobile (SMS, robot @-mentions) or landline
	Email string `yaml:"email"`
	// DingTalk and WeCom are the person's user ids in the enterprise's
	// DingTalk or WeCom, for @-mentions by the group robots; optional.
	DingTalk string `yaml:"dingtalk"`
	WeCom    string `yaml:"wecom"`
	// Lang is the language messages to this person are written in: zh
	// (default) or en.
	Lang string `yaml:"lang"`
}

// Languages a person's messages may be written in.
var Languages = []string{"zh", "en"}

var (
	// A mainland mobile number, optionally with +86; or a landline with its
	// area code (0xx-xxxxxxxx), optionally with an extension.
	mobileRE   = regexp.MustCompile(`^(\+?86)?1[3-9][0-9]{9}$`)
	landlineRE = regexp.MustCompile(`^0[1-9][0-9]{1,2}-?[0-9]{7,8}(-[0-9]{1,6})?$`)
	// IM user ids appear in JSON and @-mentions: no spaces or controls.
	imIDRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
)

// IsMobile reports whether the phone number can take an SMS.
func (p *Person) IsMobile() bool { return mobileRE.MatchString(normalPhone(p.Phone)) }

// normalPhone drops the spaces people write numbers with.
func normalPhone(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), " ", "") }

func applyPersonDefaults(s *Site) {
	for si := range s.Sources {
		r := s.Sources[si].Responsible
		if r == nil {
			continue
		}
		for _, p := range []*Person{r.Principal, r.Technical, r.Operational} {
			if p == nil {
				continue
			}
			p.Phone = normalPhone(p.Phone)
			p.Email = strings.TrimSpace(p.Email)
			if p.Lang == "" {
				p.Lang = "zh"
			}
		}
	}
}

// validateResponsible checks a source's responsible persons: when the
// block is there, all three roles are named, each with a name and a phone
// number, and every contact is well formed.
func (p *parser) validateResponsible(sp string, src *Source) {
	r := src.Responsible
	if r == nil {
		return
	}
	rp := sp + ".responsible"
	for _, role := range Roles {
		pp := rp + "." + string(role)
		per := r.Person(role)
		if per == nil {
			p.errorf(rp, "source %q names no %s (%s); the responsibility system needs all three of principal, technical and operational",
				src.ID, role, roleZH[role])
			continue
		}
		p.validatePerson(pp, per)
	}
}

var roleZH = map[Role]string{Principal: "主要负责人", Technical: "技术负责人", Operational: "操作负责人"}

// RoleName is a role's name as the responsibility system writes it.
func RoleName(r Role) string { return roleZH[r] }

func (p *parser) validatePerson(pp string, per *Person) {
	if strings.TrimSpace(per.Name) == "" {
		p.errorf(pp+".name", "the person's name is missing")
	}
	switch {
	case per.Phone == "":
		p.errorf(pp+".phone", "%s has no phone number; warnings by SMS and robot @-mentions need one", per.Name)
	case !mobileRE.MatchString(per.Phone) && !landlineRE.MatchString(per.Phone):
		p.errorf(pp+".phone", "phone %q is neither a mobile number (11 digits, 1[3-9]…) nor a landline with its area code (0591-87654321)", per.Phone)
	}
	if per.Email != "" {
		if a, err := mail.ParseAddress(per.Email); err != nil || a.Address != per.Email {
			p.errorf(pp+".email", "e-mail %q is not an address such as name@example.com", per.Email)
		}
	}
	for key, id := range map[string]string{"dingtalk": per.DingTalk, "wecom": per.WeCom} {
		if id != "" && !imIDRE.MatchString(id) {
			p.errorf(pp+"."+key, "%s user id %q may hold only letters, digits and _ . @ -, at most 64", key, id)
		}
	}
	if per.Lang != "zh" && per.Lang != "en" {
		p.errorf(pp+".lang", "language %q is not zh or en", per.Lang)
	}
}

// String names a person with their role for logs and timelines.
func (per *Person) String() string {
	if per == nil {
		return ""
	}
	return fmt.Sprintf("%s <%s>", per.Name, per.Phone)
}
