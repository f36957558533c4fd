package notify

import (
	"strconv"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Text is a message rendered for people.
type Text struct {
	// Title is one line: an e-mail subject, a robot card's title, the
	// first line of an SMS.
	Title string
	// Lines are the body, one fact a line.
	Lines []string
}

// Body joins the lines.
func (t Text) Body() string { return strings.Join(t.Lines, "\n") }

// China Standard Time: what the people told read their clocks in.
var cst = time.FixedZone("CST", 8*3600)

// GradeName is the grade's name in a language.
func GradeName(lang string, g protocol.Grade) string {
	return i18n.T(langOf(lang), "grade."+g.String(), nil)
}

// RoleName is the role's name in a language.
func RoleName(lang string, r Role) string { return i18n.T(langOf(lang), "notify.role."+string(r), nil) }

func langOf(s string) i18n.Lang {
	l, _ := i18n.Parse(s) // an unknown language falls back to Chinese
	return l
}

// Render writes a message for people in lang (zh when unknown), from the
// message catalogs of internal/i18n (keys notify.*).
func Render(m *Message, lang string) Text {
	l := langOf(lang)
	t := func(key string, args i18n.Args) string { return i18n.T(l, key, args) }
	where := i18n.Args{"site": or(m.SiteName, m.Site), "source": or(m.SourceName, m.Source), "grade": GradeName(lang, m.Grade)}
	var out Text
	switch m.Kind {
	case Escalation, Acknowledged, Closed, Urged:
		out.Title = t("notify.title."+string(m.Kind), where)
	default:
		out.Title = t("notify.title.warning", where)
	}
	out.Lines = append(out.Lines, t("notify.where", where))
	if !m.Opened.IsZero() {
		out.Lines = append(out.Lines, t("notify.opened", i18n.Args{"time": m.Opened.In(cst).Format("2006-01-02 15:04:05")}))
	}
	at := m.At.In(cst).Format("15:04:05")
	switch m.Kind {
	case Escalation:
		out.Lines = append(out.Lines, t("notify.unacked", i18n.Args{"duration": i18n.Duration(l, m.At.Sub(m.Opened).Truncate(time.Minute))}))
	case Acknowledged:
		out.Lines = append(out.Lines, t("notify.acked", i18n.Args{"actor": m.Actor, "time": at}))
	case Closed:
		out.Lines = append(out.Lines, t("notify.closed", i18n.Args{"actor": or(m.Actor, "-"), "time": at}))
	case Urged:
		out.Lines = append(out.Lines, t("notify.urged", i18n.Args{"actor": m.Actor, "time": at, "comment": m.Comment}))
	}
	for _, c := range m.Conditions {
		v := strconv.FormatFloat(c.Value, 'f', -1, 64)
		if c.Unit != "" {
			v += " " + c.Unit
		}
		out.Lines = append(out.Lines, t("notify.condition", i18n.Args{"name": or(c.Name, c.Point), "value": v}))
	}
	if len(m.To) > 0 {
		names := make([]string, len(m.To))
		for i, r := range m.To {
			names[i] = RoleName(lang, r.Role) + " " + r.Name
		}
		out.Lines = append(out.Lines, t("notify.to", i18n.Args{"names": strings.Join(names, t("list.sep", nil))}))
	}
	if m.Link != "" && m.Kind != Closed {
		out.Lines = append(out.Lines, t("notify.link", i18n.Args{"link": m.Link}))
	}
	if m.Incident != "" {
		out.Lines = append(out.Lines, t("notify.id", i18n.Args{"id": m.Incident}))
	}
	return out
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
