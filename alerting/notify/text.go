package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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

// catalog holds the words of notifications per language. Keys are
// stable; add a language by adding a map.
var catalog = map[string]map[string]string{
	"zh": {
		"title.warning":      "【%s】%s %s",
		"title.escalation":   "【%s·升级】%s %s",
		"title.acknowledged": "【已确认】%s %s",
		"title.closed":       "【已关闭】%s %s",
		"line.where":         "企业：%s；危险源：%s",
		"line.opened":        "发生时间：%s",
		"line.unacked":       "已 %s未确认，按通知策略升级通知您。",
		"line.acked":         "%s 已确认（%s）。",
		"line.closed":        "%s 已关闭警情（%s）。",
		"line.condition":     "· %s：%s %s",
		"line.to":            "通知：%s",
		"line.link":          "请登录值守平台处置：%s",
		"line.id":            "警情编号：%s",
		"role.operational":   "操作负责人",
		"role.technical":     "技术负责人",
		"role.principal":     "主要负责人",
		"role.duty_officer":  "值班员",
		"grade.blue":         "蓝色预警",
		"grade.yellow":       "黄色预警",
		"grade.orange":       "橙色预警",
		"grade.red":          "红色预警",
		"grade.none":         "正常",
		"minutes":            "%d 分钟",
	},
	"en": {
		"title.warning":      "[%s] %s %s",
		"title.escalation":   "[%s, escalated] %s %s",
		"title.acknowledged": "[Acknowledged] %s %s",
		"title.closed":       "[Closed] %s %s",
		"line.where":         "Enterprise: %s; hazard source: %s",
		"line.opened":        "Opened: %s",
		"line.unacked":       "Unacknowledged for %s: the notification policy escalates it to you.",
		"line.acked":         "Acknowledged by %s (%s).",
		"line.closed":        "Closed by %s (%s).",
		"line.condition":     "- %s: %s %s",
		"line.to":            "To: %s",
		"line.link":          "Handle it in the console: %s",
		"line.id":            "Incident: %s",
		"role.operational":   "operational lead",
		"role.technical":     "technical lead",
		"role.principal":     "principal",
		"role.duty_officer":  "duty officer",
		"grade.blue":         "BLUE warning",
		"grade.yellow":       "YELLOW warning",
		"grade.orange":       "ORANGE warning",
		"grade.red":          "RED warning",
		"grade.none":         "normal",
		"minutes":            "%d min",
	},
}

// Languages lists the languages messages can be rendered in.
func Languages() []string { return []string{"zh", "en"} }

// China Standard Time: what the people told read their clocks in.
var cst = time.FixedZone("CST", 8*3600)

func word(lang, key string) string {
	if w, ok := catalog[lang][key]; ok {
		return w
	}
	return catalog["zh"][key]
}

// GradeName is the grade's name in a language.
func GradeName(lang string, g protocol.Grade) string { return word(lang, "grade."+g.String()) }

// RoleName is the role's name in a language.
func RoleName(lang string, r Role) string { return word(lang, "role."+string(r)) }

// Render writes a message for people in lang (zh when unknown).
func Render(m *Message, lang string) Text {
	if _, ok := catalog[lang]; !ok {
		lang = "zh"
	}
	f := func(key string, args ...any) string { return fmt.Sprintf(word(lang, key), args...) }
	site, source := or(m.SiteName, m.Site), or(m.SourceName, m.Source)
	grade := GradeName(lang, m.Grade)
	var t Text
	switch m.Kind {
	case Escalation:
		t.Title = f("title.escalation", grade, site, source)
	case Acknowledged:
		t.Title = f("title.acknowledged", site, source)
	case Closed:
		t.Title = f("title.closed", site, source)
	default:
		t.Title = f("title.warning", grade, site, source)
	}
	t.Lines = append(t.Lines, f("line.where", site, source))
	if !m.Opened.IsZero() {
		t.Lines = append(t.Lines, f("line.opened", m.Opened.In(cst).Format("2006-01-02 15:04:05")))
	}
	switch m.Kind {
	case Escalation:
		t.Lines = append(t.Lines, f("line.unacked", f("minutes", int(m.At.Sub(m.Opened).Minutes()))))
	case Acknowledged:
		t.Lines = append(t.Lines, f("line.acked", m.Actor, m.At.In(cst).Format("15:04:05")))
	case Closed:
		t.Lines = append(t.Lines, f("line.closed", or(m.Actor, "-"), m.At.In(cst).Format("15:04:05")))
	}
	for _, c := range m.Conditions {
		t.Lines = append(t.Lines, f("line.condition", or(c.Name, c.Point), strconv.FormatFloat(c.Value, 'f', -1, 64), c.Unit))
	}
	if len(m.To) > 0 {
		names := make([]string, len(m.To))
		for i, r := range m.To {
			names[i] = RoleName(lang, r.Role) + " " + r.Name
		}
		t.Lines = append(t.Lines, f("line.to", strings.Join(names, lang2sep(lang))))
	}
	if m.Link != "" && m.Kind != Closed {
		t.Lines = append(t.Lines, f("line.link", m.Link))
	}
	if m.Incident != "" {
		t.Lines = append(t.Lines, f("line.id", m.Incident))
	}
	return t
}

func lang2sep(lang string) string {
	if lang == "en" {
		return ", "
	}
	return "、"
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
