package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/allinone"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/simulators"
)

// exampleCityOnFreePorts copies the example city's site files into one
// directory with their Modbus devices on free ports.
func exampleCityOnFreePorts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, addrs := range map[string][]string{
		"tank-farm.yaml":    {"127.0.0.1:15021", "127.0.0.1:15022"},
		"coal-mine.yaml":    {"127.0.0.1:15031", "127.0.0.1:15032"},
		"chlor-alkali.yaml": {"127.0.0.1:15041", "127.0.0.1:15042"},
	} {
		path, _ := testenv.ExampleSite(t, name, addrs...)
		if err := os.Rename(path, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestThreeLevelsInTheBrowser runs the demo on the example city with an
// ammonia leak at the tank farm in 三元区 and opens the links it prints:
// the city officer's roll-up and map show 三元区 red and the other
// counties normal; the county officer of 三元区 sees only 三元区; the
// enterprise's operator acknowledges the incident and files its disposal
// on the console.
func TestThreeLevelsInTheBrowser(t *testing.T) {
	broker := testenv.Mosquitto(t)
	leak := simulators.Scenario{Name: "e2e-leak", Site: "jh-chem", Steps: []simulators.Step{
		{At: time.Second, Point: "nh3-gas-1", To: 90},
		{At: time.Second, Point: "nh3-gas-2", To: 50},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan allinone.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, allinone.Config{SitesDir: exampleCityOnFreePorts(t), DataDir: t.TempDir(), Broker: broker.URL(),
			HTTPAddr: "127.0.0.1:0", Play: &leak, Ready: func(i allinone.Info) { ready <- i }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the demo stopped with: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("the demo did not stop within 60s")
		}
	})
	var info allinone.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("the demo did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not start within 60s")
	}
	links := map[string]string{}
	for _, l := range info.Levels {
		links[l.User] = l.URL
	}
	if len(links) != 4 || !strings.Contains(links["city"], "next=%2Fregions") || !strings.Contains(links["wall"], "next=%2Fwall") {
		t.Fatalf("the demo's level links: %+v", info.Levels)
	}

	// The city officer: the roll-up and the map.
	city := newBrowser(t)
	city.run("open the city officer's link", chromedp.Navigate(links["city"]))
	city.waitPage("/regions")
	county := `document.querySelector('.map path.county[data-code="350404"]')`
	city.waitFor("the city's roll-up and map with 三元区 red", `location.pathname === '/regions' && `+county+` && `+county+`.classList.contains('g-red')
		&& [...document.querySelectorAll('#rollup-rows tr.level-county')].some(tr => tr.textContent.includes('三元区') && tr.querySelector('.grade.g-red'))`, 90*time.Second)
	var others []string
	city.eval(`[...document.querySelectorAll('.map path.county')].filter(p => p.dataset.code !== '350404' && !p.classList.contains('g-none')).map(p => p.dataset.code)`, &others)
	var rows, dots int
	city.eval(`document.querySelectorAll('#rollup-rows tr.level-county').length`, &rows)
	city.eval(`document.querySelectorAll('.map circle.source').length`, &dots)
	if len(others) != 0 || rows != 3 || dots != 6 {
		t.Errorf("city view: counties not normal %v, %d county rows (want 3), %d sources on the map (want 6)", others, rows, dots)
	}
	var hash string
	city.eval(`location.hash`, &hash)
	if strings.Contains(hash, "password") {
		t.Errorf("the credential stays in the address bar: %q", hash)
	}
	city.screenshot("regions-city.png")

	// The county officer of 三元区: that county only.
	cty := newBrowser(t)
	cty.run("open the county officer's link", chromedp.Navigate(links["county"]))
	cty.waitPage("/regions")
	cty.waitFor("the county's roll-up", `location.pathname === '/regions' && document.querySelectorAll('#rollup-rows tr').length > 0 && document.querySelector('#rollup-rows tr').textContent.includes('三元区')`, 60*time.Second)
	var names []string
	cty.eval(`[...document.querySelectorAll('#rollup-rows tr')].map(tr => tr.textContent)`, &names)
	for _, n := range names {
		if strings.Contains(n, "永安") || strings.Contains(n, "沙县") || strings.Contains(n, "新山") || strings.Contains(n, "金沙") {
			t.Errorf("the county officer of 三元区 sees %q", n)
		}
	}
	cty.eval(`document.querySelectorAll('.map circle.source').length`, &dots)
	if dots != 2 {
		t.Errorf("the county officer's map shows %d sources, want the tank farm's 2", dots)
	}
	cty.screenshot("regions-county.png")
	// … and urges the enterprise from the console (督办).
	cty.run("open the console", chromedp.Navigate(info.HTTP+"/"))
	cty.waitLoggedIn()
	urge := `document.querySelector('#incident-rows tr button.incident_urge')`
	cty.waitFor("the urge button on the tank farm's incident", urge+` && `+urge+`.offsetParent !== null && !document.querySelector('#incident-rows tr button.incident_ack').offsetParent`, 60*time.Second)
	cty.run("urge", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_urge`)))
	cty.waitFor("the urge dialog", `document.getElementById('action-dialog').open && document.getElementById('action-comment').required`, 10*time.Second)
	cty.run("say what is asked", chromedp.SendKeys(chromedp.CSS("#action-comment"), "请30分钟内报告处置进展"), chromedp.Click(chromedp.CSS("#action-submit")))
	cty.waitFor("the urging sent", `!document.getElementById('action-dialog').open`, 20*time.Second)
	supervisor := loggedInClient(t, info.HTTP, "county", info.DemoPassword)
	testenv.Eventually(t, "the urging in the incident's timeline", 20*time.Second, func() bool {
		var open []incident.Incident
		if !getJSON(t, supervisor, info.HTTP+"/api/incidents", &open) || len(open) != 1 {
			return false
		}
		var evs []incident.Event
		getJSON(t, supervisor, info.HTTP+"/api/incidents/"+url.PathEscape(open[0].ID)+"/timeline", &evs)
		for _, e := range evs {
			if e.Type == incident.TypeUrged && e.Actor == "county" && strings.Contains(e.Comment, "处置进展") {
				return true
			}
		}
		return false
	})

	// The enterprise's operator: acknowledges the incident and files its
	// disposal.
	op := newBrowser(t)
	op.run("open the operator's link", chromedp.Navigate(links["operator"]))
	op.waitLoggedIn()
	inc := `document.querySelector('#incident-rows tr')`
	op.waitFor("the tank farm's red incident", `document.querySelectorAll('#incident-rows tr').length === 1 && `+inc+`.dataset.grade === 'red' && `+inc+`.dataset.acked === 'no'`, 90*time.Second)
	op.run("open the acknowledge dialog", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_ack`)))
	op.waitFor("the acknowledge dialog", `document.getElementById('action-dialog').open`, 10*time.Second)
	op.run("acknowledge", chromedp.SendKeys(chromedp.CSS("#action-comment"), "已到现场"), chromedp.Click(chromedp.CSS("#action-submit")))
	op.waitFor("the incident acknowledged", `!document.getElementById('action-dialog').open && `+inc+`.dataset.acked === 'yes'`, 20*time.Second)
	op.run("open the disposal dialog", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_disposal`)))
	op.waitFor("the disposal dialog", `document.getElementById('disposal-dialog').open`, 10*time.Second)
	op.eval(`document.getElementById('disposal-cause').value = 'leak'; true`, nil)
	op.run("file the disposal",
		chromedp.SendKeys(chromedp.CSS("#disposal-found"), "2#罐呼吸阀泄漏"),
		chromedp.SendKeys(chromedp.CSS("#disposal-measures"), "关阀，喷淋稀释，更换呼吸阀"),
		chromedp.Click(chromedp.CSS("#disposal-submit")))
	op.waitFor("the disposal on the incident", `!document.getElementById('disposal-dialog').open && `+inc+`.querySelector('button.incident_disposal').hidden`, 20*time.Second)
	api := loggedInClient(t, info.HTTP, "operator", info.DemoPassword)
	var got []incident.Incident
	testenv.Eventually(t, "the disposal in the journal", 20*time.Second, func() bool {
		got = nil
		return getJSON(t, api, info.HTTP+"/api/incidents", &got) && len(got) == 1 && got[0].Disposal != nil
	})
	if got[0].AckedBy != "operator" || got[0].Disposal.By != "operator" || got[0].Site != "jh-chem" {
		t.Errorf("the incident as journaled: acked by %q, disposal by %q, site %s", got[0].AckedBy, got[0].Disposal.By, got[0].Site)
	}
	for _, b := range []*browser{city, cty, op} {
		if errs := b.scriptErrors(); len(errs) > 0 {
			t.Errorf("script errors:\n%s", strings.Join(errs, "\n"))
		}
	}
}

// loggedInClient is an HTTP client with a session of the account.
func loggedInClient(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := cl.Post(base+"/api/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("log in as %s: %s", user, resp.Status)
	}
	return cl
}

// waitPage waits until the browser has gone on to the page at path (a
// login link sends it there) and loaded it.
func (b *browser) waitPage(path string) {
	b.t.Helper()
	testenv.Eventually(b.t, "the page "+path, 30*time.Second, func() bool {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.pathname + ' ' + document.readyState`))
		return err == nil && got == path+" complete"
	})
}

// getJSON decodes a GET answer; false when it is not 200.
func getJSON(t *testing.T, cl *http.Client, u string, into any) bool {
	t.Helper()
	resp, err := cl.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return true
}
