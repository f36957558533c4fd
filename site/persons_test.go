package site

import (
	"strings"
	"testing"
)

const withPersons = minimal + `    responsible:
      principal:   {name: 王建国, phone: "139 0505 0001", email: wang@jh-chem.example, lang: zh}
      technical:   {name: 李工, phone: 0591-87654321, email: li@jh-chem.example, dingtalk: li-gong}
      operational: {name: Zhang Wei, phone: "+8613905050003", wecom: ZhangWei, lang: en}
`

func TestResponsiblePersonsLoad(t *testing.T) {
	s := mustParse(t, withPersons)
	r := s.Source("src1").Responsible
	if r == nil {
		t.Fatal("responsible persons not loaded")
	}
	if got := r.Person(Principal); got.Name != "王建国" || got.Phone != "13905050001" || got.Lang != "zh" || !got.IsMobile() {
		t.Errorf("principal = %+v, want 王建国 with the spaces taken out of the phone, lang zh", got)
	}
	if got := r.Person(Technical); got.IsMobile() || got.DingTalk != "li-gong" || got.Lang != "zh" {
		t.Errorf("technical = %+v: a landline is no mobile; lang defaults to zh", got)
	}
	if got := r.Person(Operational); got.Lang != "en" || got.WeCom != "ZhangWei" || !got.IsMobile() {
		t.Errorf("operational = %+v", got)
	}
}

func TestResponsiblePersonsChecked(t *testing.T) {
	text := minimal + `    responsible:
      principal:   {name: 王建国, phone: "12345", email: not-an-address}
      technical:   {name: "", phone: 13905050002, dingtalk: "has space", lang: fr}
`
	ps := problemsOf(t, text)
	got := ps.Error()
	for _, want := range []string{
		"sources[0].responsible.principal.phone: phone \"12345\" is neither a mobile number",
		"sources[0].responsible.principal.email: e-mail \"not-an-address\"",
		"sources[0].responsible.technical.name: the person's name is missing",
		"sources[0].responsible.technical.dingtalk:",
		"sources[0].responsible.technical.lang: language \"fr\"",
		"sources[0].responsible: source \"src1\" names no operational (操作负责人)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	for _, p := range ps {
		if p.Line == 0 {
			t.Errorf("problem without a line: %s", p)
		}
	}
}

func TestResponsibleUnknownKey(t *testing.T) {
	text := minimal + `    responsible:
      principal: {name: 王建国, phone: "13905050001", mobile: "x"}
`
	if got := problemsOf(t, text).Error(); !strings.Contains(got, `unknown key "mobile"`) {
		t.Errorf("unknown key not reported: %s", got)
	}
}
