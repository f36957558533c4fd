package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleSaysAlarmsInTheOfficersLanguage: an officer who switched the
// console to English reads the alarms in English — rendered by the centre
// from the same catalog the webhook receivers use — naming the detectors by
// their names in the site file, never by their ids; back in Chinese, the
// same alarms read in Chinese.
func TestConsoleSaysAlarmsInTheOfficersLanguage(t *testing.T) {
	cc := startConsoleCentre(t)
	b := newBrowser(t)
	b.login(cc.srv.URL, consoleOfficer, consoleOfficerPassword)
	b.run("switch to English", chromedp.Click(chromedp.CSS("#lang")))
	tile := `document.querySelector('.tile[data-key="jh-chem/nh3-tanks"]')`
	b.waitFor("the calm tank farm in English", tile+` && `+tile+`.querySelector('.label').textContent === 'Normal'`, 60*time.Second)

	if err := cc.sim.Set("nh3-gas-1", 90); err != nil {
		t.Fatal(err)
	}
	if err := cc.sim.Set("nh3-gas-2", 50); err != nil {
		t.Fatal(err)
	}
	vote := "jh-chem/nh3-tanks/nh3-leak/vote_first"
	hh := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	msg := func(id string) string {
		return `document.querySelector('#alarm-rows tr[data-id="` + id + `"] .msg')`
	}
	b.waitFor("the vote and HH warnings listed", msg(vote)+` && `+msg(hh)+` && `+msg(vote)+`.textContent.includes('at first level alarm')`, 60*time.Second)
	var voteText, hhText string
	b.eval(msg(vote)+`.textContent`, &voteText)
	b.eval(msg(hh)+`.textContent`, &hhText)
	if !strings.HasPrefix(voteText, "液氨泄漏 2oo3 表决: ") || !strings.Contains(voteText, "1#液氨储罐 NH3 检测器 90 ppm") ||
		!strings.Contains(voteText, "2#液氨储罐 NH3 检测器 50 ppm") {
		t.Errorf("English vote message %q: want the vote's and the detectors' names with their values", voteText)
	}
	if !strings.HasPrefix(hhText, "1#液氨储罐 NH3 检测器 90 ppm ≥ HH 80 ppm for ") {
		t.Errorf("English HH message %q", hhText)
	}
	for _, s := range []string{voteText, hhText} {
		if strings.Contains(s, "nh3-gas-") || strings.ContainsAny(s, "，：持续达报警") {
			t.Errorf("message %q names ids or is not English", s)
		}
	}
	b.screenshot("console-alarms-en.png", "#alarm-panel")

	// The timeline says the events in English too.
	b.run("open the timeline", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+vote+`"] button.timeline`)))
	b.waitFor("the raise in the timeline in English", `[...document.querySelectorAll('#timeline-rows tr[data-type="raised"] td')].some(td => td.textContent.includes('at first level alarm'))`, 10*time.Second)
	b.run("close the timeline", chromedp.Click(chromedp.CSS(`#timeline-dialog button.close`)))

	b.run("back to Chinese", chromedp.Click(chromedp.CSS("#lang")))
	b.waitFor("the vote warning in Chinese", msg(vote)+`.textContent.endsWith('达一级报警')`, 10*time.Second)
	b.eval(msg(vote)+`.textContent`, &voteText)
	if !strings.HasPrefix(voteText, "液氨泄漏 2oo3 表决：1#液氨储罐 NH3 检测器 90 ppm") {
		t.Errorf("Chinese vote message %q", voteText)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors in the console:\n%s", strings.Join(errs, "\n"))
	}
}
