package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

const (
	consoleOfficer         = "zhang.ming"
	consoleOfficerDisplay  = "张明"
	consoleOfficerPassword = "e2e-console-officer-password"
	consoleViewerToken     = "e2e-console-viewer-token"
)

var (
	consoleHashOnce sync.Once
	consoleHash     string
)

// consoleAccess is the officer 张明's account and a viewer token.
func consoleAccess(t *testing.T) access.Config {
	t.Helper()
	consoleHashOnce.Do(func() {
		var err error
		if consoleHash, err = access.HashPassword(consoleOfficerPassword); err != nil {
			t.Fatal(err)
		}
	})
	return access.Config{
		Accounts: []access.Account{{Name: consoleOfficer, Display: consoleOfficerDisplay, Role: access.Officer, PasswordHash: consoleHash}},
		Tokens:   []access.Token{{Name: "e2e-viewer", Role: access.Viewer, Hash: access.HashToken(consoleViewerToken)}},
	}
}

// artifactsDir is where the browser tests save their screenshots:
// $HAZARDWATCH_ARTIFACTS, else test-artifacts/console at the top of the
// repository (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HAZARDWATCH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(dir, "console"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// browser is a headless Debian chromium driven over the DevTools protocol,
// with the page's script errors collected.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string

	mu     sync.Mutex
	errors []string
	logs   []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := testenv.LookTool(t, "chromium", "apt-get install -y chromium")
	// Exactly these flags: the ones a closed, headless CI machine needs.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	b := &browser{t: t, ctx: ctx, artifacts: artifactsDir(t)}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	listen := func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			b.errors = append(b.errors, msg)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.logs = append(b.logs, string(ev.Type)+": "+strings.Join(args, " "))
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	b.run("set the window size", chromedp.EmulateViewport(1600, 1000))
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("failure.png")
			b.mu.Lock()
			t.Logf("page console:\n%s", strings.Join(b.logs, "\n"))
			b.mu.Unlock()
		}
	})
	return b
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript expression in the page until it is true.
func (b *browser) waitFor(what, expr string, within time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.t.Fatalf("%s: not within %s (%s): %v", what, within, expr, err)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("evaluate %s: %s: %v", expr, raw, err)
		}
	}
}

// screenshot saves the page, or one element of it, as a PNG artifact.
func (b *browser) screenshot(name string, sel ...string) string {
	var png []byte
	var err error
	if len(sel) > 0 {
		png, err = chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel[0])))
	} else {
		png, err = chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// scriptErrors returns the page's uncaught exceptions so far.
func (b *browser) scriptErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// login opens the console and logs in through its form with the user
// name and password.
func (b *browser) login(base, user, password string) {
	b.t.Helper()
	b.run("open the console", chromedp.Navigate(base+"/"))
	b.waitFor("the login dialog", `document.getElementById('login-dialog').open && document.activeElement === document.getElementById('login-user')`, 30*time.Second)
	b.run("a wrong password",
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "not the password"),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	b.waitFor("the login refused", `!document.getElementById('login-error').hidden && document.getElementById('login-dialog').open && document.getElementById('login-password').value === ''`, 30*time.Second)
	b.screenshot("console-login.png")
	b.run("log in",
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	b.waitLoggedIn()
}

// loginByLink opens the console with the credential in the fragment, as
// the all-in-one demo prints its link: it logs in without a click, and the
// credential leaves the address bar.
func (b *browser) loginByLink(base, user, password string) {
	b.t.Helper()
	b.run("open the demo link", chromedp.Navigate(base+"/#"+url.Values{"user": {user}, "password": {password}}.Encode()))
	b.waitLoggedIn()
	var hash string
	b.eval(`location.hash`, &hash)
	if hash != "" {
		b.t.Errorf("the credential stays in the address bar: %q", hash)
	}
}

func (b *browser) waitLoggedIn() {
	b.t.Helper()
	b.waitFor("the console logged in and live", `!document.getElementById('login-dialog').open && document.getElementById('conn').dataset.state === 'live' && !document.body.classList.contains('loading')`, 30*time.Second)
}

// consoleCentre runs a real centre — private Mosquitto, the tank farm's
// Modbus simulators, its gateway polling them, ingest, rules, alerting —
// and serves its HTTP handler.
type consoleCentre struct {
	c   *center.Center
	sim *simulators.Sim
	srv *httptest.Server
}

func startConsoleCentre(t *testing.T) *consoleCentre {
	t.Helper()
	broker := testenv.Mosquitto(t)
	sites, err := site.LoadDir(tankFarmOnFreePorts(t))
	if err != nil {
		t.Fatal(err)
	}
	s := sites[0]
	sim, err := simulators.New(s, simulators.WithoutNoise())
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	c, err := center.Open(ctx, center.Config{Sites: sites, Broker: broker.URL(), ClientID: "e2e-console-ingest", DataDir: t.TempDir(),
		Access: consoleAccess(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	gw, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw-tank", DataDir: t.TempDir(), MQTT: gateway.MQTTConfig{Broker: broker.URL()}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(ctx) }()
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		for what, ch := range map[string]chan error{"gateway": gwDone, "centre": runDone} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("%s stopped with: %v", what, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", what)
			}
		}
		c.Close()
	})
	return &consoleCentre{c: c, sim: sim, srv: srv}
}

// TestConsoleFollowsIncidentAndRecordsAcknowledgement: an officer logs in
// to the console; an ammonia leak at the tank farm turns the liquid-ammonia
// source orange (detector 1 past HH) and then red (detector 2 past H: the
// 2-out-of-3 vote), with no reload; the officer acknowledges the red
// warning through the dialog, the row changes state, and the journal
// records the officer's name; then the officer comments on the alarm from
// its row and from its timeline, and the timeline, the journal and the
// officer's actions show the comments under the officer's name.
func TestConsoleFollowsIncidentAndRecordsAcknowledgement(t *testing.T) {
	cc := startConsoleCentre(t)
	b := newBrowser(t)
	// Count the console's beeps: every tone is one oscillator.
	b.run("count beeps", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.hwBeeps = 0;
			if (window.AudioContext) {
				const make = AudioContext.prototype.createOscillator;
				AudioContext.prototype.createOscillator = function () { window.hwBeeps++; return make.call(this); };
			}`})
		return err
	}))
	// Actions are recorded under the account; the dialogs show who.
	const officer, shown = consoleOfficer, consoleOfficerDisplay + " (" + consoleOfficer + ")"
	b.login(cc.srv.URL, consoleOfficer, consoleOfficerPassword)
	var who string
	b.eval(`document.getElementById('who').textContent`, &who)
	if !strings.HasPrefix(who, consoleOfficerDisplay) {
		t.Errorf("the header shows %q, want the officer's name %s", who, consoleOfficerDisplay)
	}

	tile := `document.querySelector('.tile[data-key="jh-chem/nh3-tanks"]')`
	b.waitFor("the calm tank farm on the board with data", tile+` && `+tile+`.dataset.grade === 'none' && `+tile+`.dataset.data === 'yes'`, 60*time.Second)
	var label string
	b.eval(tile+`.querySelector('.label').textContent`, &label)
	if label != "正常" {
		t.Errorf("calm source's label = %q, want 正常 (Chinese by default)", label)
	}
	b.waitFor("the gateway shown online", `!!document.querySelector('#gateways li[data-key="jh-chem/gw-tank"][data-state="online"]')`, 30*time.Second)
	// Record every grade the tile shows, and mark this page load: a reload
	// would lose both.
	b.eval(`window.hwSeen = []; window.hwLoad = 'first';
		new MutationObserver(() => { const g = `+tile+`.dataset.grade; if (hwSeen[hwSeen.length-1] !== g) hwSeen.push(g); })
			.observe(document.getElementById('board'), {subtree: true, attributes: true, attributeFilter: ['data-grade']}); true`, nil)

	var beeps int
	b.eval(`hwBeeps`, &beeps)
	if beeps != 0 {
		t.Errorf("%d beeps before any warning", beeps)
	}

	// The leak: detector 1 far past HH first.
	if err := cc.sim.Set("nh3-gas-1", 90); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the NH3 tank farm orange", tile+`.dataset.grade === 'orange'`, 60*time.Second)
	hh := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	row := func(id string) string { return `document.querySelector('#alarm-rows tr[data-id="` + id + `"]')` }
	b.waitFor("the HH warning blinking in the alarm list", row(hh)+` && `+row(hh)+`.dataset.state === 'unacked' && `+row(hh)+`.classList.contains('blink')`, 10*time.Second)
	b.waitFor("two beeps for the orange warning", `hwBeeps >= 2`, 10*time.Second)
	b.eval(`hwBeeps`, &beeps)
	// Then detector 2 past its first level: two of three heads agree.
	if err := cc.sim.Set("nh3-gas-2", 50); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the NH3 tank farm red", tile+`.dataset.grade === 'red'`, 60*time.Second)
	vote := "jh-chem/nh3-tanks/nh3-leak/vote_first"
	b.waitFor("the red vote warning at the top of the alarm list", `document.querySelector('#alarm-rows tr').dataset.id === '`+vote+`' && `+row(vote)+`.dataset.grade === 'red'`, 10*time.Second)

	b.waitFor("three more beeps for the red warning", fmt.Sprintf(`hwBeeps >= %d`, beeps+3), 10*time.Second)
	var seen []string
	var load string
	b.eval(`hwSeen`, &seen)
	b.eval(`window.hwLoad`, &load)
	if load != "first" {
		t.Fatal("the page was reloaded during the incident")
	}
	if i, j := indexOf(seen, "orange"), indexOf(seen, "red"); i < 0 || j < i {
		t.Errorf("grades the tile showed: %v; want orange, then red", seen)
	}
	b.eval(tile+`.querySelector('.label').textContent`, &label)
	if label != "红色预警" {
		t.Errorf("red source's label = %q, want 红色预警", label)
	}
	b.screenshot("console-board.png")
	b.screenshot("console-alarms.png", "#alarm-panel")

	// The officer acknowledges the red warning through the dialog.
	const comment = "现场已确认，启动应急预案"
	b.run("open the acknowledge dialog", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+vote+`"] button.ack`)))
	b.waitFor("the acknowledge dialog with the officer's name", `document.getElementById('action-dialog').open && document.getElementById('action-officer').value === '`+shown+`'`, 10*time.Second)
	b.run("acknowledge",
		chromedp.SendKeys(chromedp.CSS("#action-comment"), comment),
		chromedp.Click(chromedp.CSS("#action-submit")),
	)
	b.waitFor("the vote warning acknowledged in the list", `!document.getElementById('action-dialog').open && `+row(vote)+`.dataset.state === 'acked' && !`+row(vote)+`.classList.contains('blink')`, 15*time.Second)
	var ackHidden bool
	b.eval(row(vote)+`.querySelector('button.ack').hidden`, &ackHidden)
	if !ackHidden {
		t.Error("an acknowledged alarm still offers to acknowledge")
	}

	// The journal records the officer's name and comment.
	tl, err := cc.c.Alerting().Timeline(context.Background(), vote)
	if err != nil {
		t.Fatal(err)
	}
	var acked *protocol.AlarmEvent
	for i := range tl {
		if tl[i].Type == protocol.AlarmAcknowledged {
			acked = &tl[i]
		}
	}
	if acked == nil || acked.Actor != officer || acked.Comment != comment || acked.State != protocol.StateAcked {
		t.Fatalf("journal of %s: %+v; want an acknowledgement by %s with the comment", vote, tl, officer)
	}
	// So does the alarm API an auditor reads.
	req, _ := http.NewRequest(http.MethodGet, cc.srv.URL+"/api/officers/"+url.PathEscape(officer)+"/actions", nil)
	req.Header.Set("Authorization", "Bearer "+consoleViewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var actions []protocol.AlarmEvent
	err = json.NewDecoder(resp.Body).Decode(&actions)
	resp.Body.Close()
	if err != nil || len(actions) != 1 || actions[0].AlarmID != vote || actions[0].Type != protocol.AlarmAcknowledged {
		t.Errorf("GET /api/officers/%s/actions: %v %+v", officer, err, actions)
	}

	// The alarm's timeline in the console shows it too.
	b.run("open the timeline", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+vote+`"] button.timeline`)))
	b.waitFor("the acknowledgement in the timeline", `[...document.querySelectorAll('#timeline-rows tr[data-type="acknowledged"] td')].some(td => td.textContent === '`+officer+`')`, 10*time.Second)
	b.run("close the timeline", chromedp.Click(chromedp.CSS(`#timeline-dialog button.close`)))

	// The officer comments on the alarm through the comment dialog: the
	// alarm stays acknowledged and the timeline shows the comment with
	// the officer's name.
	const remark = "消防队已到场，下风向200米内人员已疏散"
	b.run("open the comment dialog", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+vote+`"] button.comment`)))
	b.waitFor("the comment dialog with the officer's name", `document.getElementById('action-dialog').open && document.getElementById('action-title').textContent === '添加备注' && document.getElementById('action-officer').value === '`+shown+`' && document.getElementById('action-comment').required && document.getElementById('action-minutes-label').offsetParent === null`, 10*time.Second)
	b.screenshot("console-comment.png", "#action-dialog")
	b.run("comment",
		chromedp.SendKeys(chromedp.CSS("#action-comment"), remark),
		chromedp.Click(chromedp.CSS("#action-submit")),
	)
	b.waitFor("the comment dialog closed", `!document.getElementById('action-dialog').open && document.getElementById('action-error').hidden`, 15*time.Second)
	b.run("open the timeline again", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+vote+`"] button.timeline`)))
	commentRow := func(text string) string {
		return `[...document.querySelectorAll('#timeline-rows tr[data-type="commented"]')].some(tr => tr.children[1].textContent === '备注' && tr.children[4].textContent === '` + officer + `' && tr.children[5].textContent.startsWith('` + text + `'))`
	}
	b.waitFor("the comment in the timeline with the officer's name", commentRow(remark), 10*time.Second)
	// And from the timeline itself: it shows the new comment at once.
	const remark2 = "氨气浓度回落，继续监护"
	b.run("comment from the timeline", chromedp.Click(chromedp.CSS(`#timeline-comment`)))
	b.waitFor("the comment dialog over the timeline", `document.getElementById('action-dialog').open && document.getElementById('action-officer').value === '`+shown+`'`, 10*time.Second)
	b.run("second comment",
		chromedp.SendKeys(chromedp.CSS("#action-comment"), remark2),
		chromedp.Click(chromedp.CSS("#action-submit")),
	)
	b.waitFor("the second comment in the open timeline", `!document.getElementById('action-dialog').open && document.getElementById('timeline-dialog').open && `+commentRow(remark2), 10*time.Second)
	b.screenshot("console-timeline-comment.png", "#timeline-dialog")
	b.run("close the timeline", chromedp.Click(chromedp.CSS(`#timeline-dialog button.close`)))
	var state string
	b.eval(row(vote)+`.dataset.state`, &state)
	if state != "acked" {
		t.Errorf("state after the comments = %q, want acked", state)
	}
	// The journal and the officer's actions hold both comments.
	tl, err = cc.c.Alerting().Timeline(context.Background(), vote)
	if err != nil {
		t.Fatal(err)
	}
	var remarks []string
	for _, e := range tl {
		if e.Type == protocol.AlarmCommented {
			if e.Actor != officer || e.State != protocol.StateAcked || e.PrevState != protocol.StateAcked {
				t.Errorf("journaled comment %+v; want by %s, state acked", e, officer)
			}
			remarks = append(remarks, e.Comment)
		}
	}
	if strings.Join(remarks, "|") != remark+"|"+remark2 {
		t.Errorf("journaled comments of %s: %q", vote, remarks)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&actions)
	resp.Body.Close()
	if err != nil || len(actions) != 3 || actions[1].Type != protocol.AlarmCommented || actions[1].Comment != remark ||
		actions[2].Type != protocol.AlarmCommented || actions[2].Comment != remark2 {
		t.Errorf("GET /api/officers/%s/actions after the comments: %v %+v", officer, err, actions)
	}

	// The HH detector's trend over the last hour shows the leak.
	b.run("open the trend", chromedp.Click(chromedp.CSS(`#alarm-rows tr[data-id="`+hh+`"] button.trend`)))
	b.waitFor("the trend chart of nh3-gas-1", `document.getElementById('source-dialog').open && document.querySelector('#point-rows tr.selected') && document.querySelector('#point-rows tr.selected').dataset.point === 'nh3-gas-1' && Number(document.getElementById('trend').dataset.samples) > 0 && !!document.querySelector('#trend path.series')`, 20*time.Second)
	b.screenshot("console-trend.png", "#source-dialog")
	b.run("last 24 hours", chromedp.Click(chromedp.CSS(`#range-24h`)))
	b.waitFor("the 24-hour trend", `document.getElementById('range-24h').classList.contains('selected') && !!document.querySelector('#trend path.series')`, 20*time.Second)
	b.run("close the trend", chromedp.Click(chromedp.CSS(`#source-dialog button.close`)))

	// English on request, from the same dictionary.
	b.run("switch to English", chromedp.Click(chromedp.CSS("#lang")))
	b.waitFor("English labels", tile+`.querySelector('.label').textContent === 'Red' && `+row(vote)+`.querySelector('.state').textContent === 'Acknowledged'`, 10*time.Second)
	b.screenshot("console-board-en.png")

	// Logging out ends the session: the login form again, and the
	// centre refuses the browser's cookie.
	b.run("log out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("the login form after logout", `document.getElementById('login-dialog').open && document.getElementById('who').textContent === ''`, 10*time.Second)
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`fetch('/api/status').then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("GET /api/status after logout: %d, want 401", status)
	}

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors in the console:\n%s", strings.Join(errs, "\n"))
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestConsoleBoardAt1000Sources: the console loads a board of 1,000 hazard
// sources with 200 active alarms, then follows new events on it.
func TestConsoleBoardAt1000Sources(t *testing.T) {
	broker := testenv.Mosquitto(t)
	sites := testenv.ManySites(t, 10, 100)
	ctx := context.Background()
	c, err := center.Open(ctx, center.Config{Sites: sites, Broker: broker.URL(), ClientID: "e2e-console-1000", DataDir: t.TempDir(),
		Access: consoleAccess(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close) // after the browser's cleanup has ended its stream

	// 200 alarms over 200 sources, every grade, and their sources' grades.
	now := time.Now()
	var events []rules.Event
	for i := range 200 {
		s := sites[i%10]
		src := s.Sources[i/10]
		pt := src.Points[0]
		g := protocol.Grade(1 + i%4)
		key := s.ID + "/" + src.ID + "/" + pt.ID + "/H"
		events = append(events,
			rules.Event{Type: rules.Raised, Key: key, Site: s.ID, Source: src.ID, Point: pt.ID, Condition: rules.H, Grade: g,
				Value: 30, Limit: 25, Since: now, Time: now,
				Facts: protocol.AlarmFacts{Reason: rules.ReasonLimitExceeded, Name: pt.Name, Unit: "%LEL", LimitName: "H"}},
			rules.Event{Type: rules.SourceGradeChanged, Key: s.ID + "/" + src.ID, Site: s.ID, Source: src.ID, Grade: g, Time: now,
				Facts: protocol.AlarmFacts{Reason: rules.ReasonSourceRaised, SourceName: src.Name}})
	}
	if err := c.Alerting().HandleEvents(ctx, events); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	b.loginByLink(srv.URL, consoleOfficer, consoleOfficerPassword)
	b.waitFor("1,000 tiles and 200 alarm rows", `document.querySelectorAll('#board .tile').length === 1000 && document.querySelectorAll('#alarm-rows tr').length === 200`, 60*time.Second)
	var counts map[string]int
	b.eval(`(() => { const n = {}; for (const el of document.querySelectorAll('#board .tile')) { const k = el.dataset.data === 'no' && (el.dataset.grade === 'none' || el.dataset.grade === 'blue') ? 'grey' : el.dataset.grade; n[k] = (n[k] || 0) + 1; } return n; })()`, &counts)
	// No gateway runs: the 800 sources without warnings are grey; the
	// 200 with one show their grade (blue ones grey, with the label).
	if counts["grey"] != 850 || counts["red"] != 50 || counts["orange"] != 50 || counts["yellow"] != 50 {
		t.Errorf("tiles by colour = %v; want 850 grey (800 normal, 50 blue) and 50 each of red, orange, yellow", counts)
	}
	var header string
	b.eval(`document.getElementById('alarm-count').textContent`, &header)
	if header != "200" {
		t.Errorf("alarm count = %q, want 200", header)
	}
	b.screenshot("console-1000-sources.png")

	// A new red warning on the 1,000-source board comes to the top.
	s, src := sites[3], sites[3].Sources[77]
	key := s.ID + "/" + src.ID + "/" + src.Points[0].ID + "/HH"
	err = c.Alerting().HandleEvents(ctx, []rules.Event{
		{Type: rules.Raised, Key: key, Site: s.ID, Source: src.ID, Point: src.Points[0].ID, Condition: rules.HH, Grade: protocol.Red,
			Value: 60, Limit: 50, Since: time.Now(), Time: time.Now(),
			Facts: protocol.AlarmFacts{Reason: rules.ReasonLimitExceeded, Name: "gas", Unit: "%LEL", LimitName: "HH"}},
		{Type: rules.SourceGradeChanged, Key: s.ID + "/" + src.ID, Site: s.ID, Source: src.ID, Grade: protocol.Red, Time: time.Now()},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor("the new red warning first in the list and on the board",
		`document.querySelector('#alarm-rows tr').dataset.id === '`+key+`' && document.querySelector('.tile[data-key="`+s.ID+"/"+src.ID+`"]').dataset.grade === 'red' && document.querySelectorAll('#alarm-rows tr').length === 201`, 30*time.Second)
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors in the console:\n%s", strings.Join(errs, "\n"))
	}
}

// TestConsoleIncidentAcknowledgeAndDisposal: the ammonia leak is one
// incident row for the tank farm, red, with its contributing points and
// their live values; the officer acknowledges it once through its dialog,
// which acknowledges every alarm under the officer's name; the source's
// point table marks the points in alarm and the trend has no axis below 0
// and its unit clear of the ticks; the officer files the disposal record
// through its dialog, the incident's timeline shows it, and when the
// detectors read normal again the incident closes and leaves the list.
func TestConsoleIncidentAcknowledgeAndDisposal(t *testing.T) {
	cc := startConsoleCentre(t)
	b := newBrowser(t)
	// Actions are recorded under the login; the dialogs show the person.
	const officer, shown = consoleOfficer, consoleOfficerDisplay + " (" + consoleOfficer + ")"
	b.login(cc.srv.URL, consoleOfficer, consoleOfficerPassword)
	tile := `document.querySelector('.tile[data-key="jh-chem/nh3-tanks"]')`
	b.waitFor("the tank farm with data", tile+` && `+tile+`.dataset.data === 'yes'`, 60*time.Second)
	var cut bool
	b.eval(`[...document.querySelectorAll('#board .tile .name')].some(el => el.scrollWidth > el.clientWidth + 1)`, &cut)
	if cut {
		t.Error("a tile's name is cut off")
	}

	for point, v := range map[string]float64{"nh3-gas-1": 90, "nh3-gas-2": 50} {
		if err := cc.sim.Set(point, v); err != nil {
			t.Fatal(err)
		}
	}
	inc := `document.querySelector('#incident-rows tr')`
	b.waitFor("one red, unacknowledged incident for the tank farm", `document.querySelectorAll('#incident-rows tr').length === 1 && `+inc+`.dataset.grade === 'red' && `+inc+`.dataset.acked === 'no' && `+inc+`.classList.contains('blink')`, 90*time.Second)
	b.waitFor("its points with their live values", `[...`+inc+`.querySelectorAll('.conds li')].some(li => li.querySelector('.name').textContent === '1#液氨储罐 NH3 检测器' && /^9\d(\.\d+)? ppm$/.test(li.querySelector('.live').textContent))`, 20*time.Second)
	var src string
	b.eval(inc+`.querySelector('.src').textContent`, &src)
	if src != "江海化工储运有限公司 · 液氨储罐区" {
		t.Errorf("incident row's enterprise and source = %q", src)
	}
	var nAlarms int
	b.eval(`document.querySelectorAll('#alarm-rows tr').length`, &nAlarms)
	if nAlarms < 3 {
		t.Errorf("%d alarm details, want the leak's point-level alarms", nAlarms)
	}
	b.screenshot("console-incidents.png", "#incident-panel")

	// Acknowledged once.
	const comment = "已通知现场，启动应急预案"
	b.run("open the incident's acknowledge dialog", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_ack`)))
	b.waitFor("the dialog with the officer's name", `document.getElementById('action-dialog').open && document.getElementById('action-officer').value === '`+shown+`' && document.getElementById('action-title').textContent.startsWith('确认警情')`, 10*time.Second)
	b.run("acknowledge the incident",
		chromedp.SendKeys(chromedp.CSS("#action-comment"), comment),
		chromedp.Click(chromedp.CSS("#action-submit")),
	)
	b.waitFor("the incident acknowledged and every alarm with it", `!document.getElementById('action-dialog').open && `+inc+`.dataset.acked === 'yes' && !`+inc+`.classList.contains('blink') && [...document.querySelectorAll('#alarm-rows tr')].every(tr => tr.dataset.state === 'acked')`, 20*time.Second)
	ctx := context.Background()
	open := cc.c.Alerting().Incidents(ctx)
	if len(open) != 1 || !open[0].Acknowledged || open[0].AckedBy != officer {
		t.Fatalf("incidents after the acknowledgement: %+v", open)
	}
	id := open[0].ID
	acts, err := cc.c.Alerting().OfficerActions(ctx, officer, time.Time{}, time.Time{})
	if err != nil || len(acts) < 3 {
		t.Errorf("%s's alarm acknowledgements: %d %v", officer, len(acts), err)
	}
	for _, a := range acts {
		if a.Type != protocol.AlarmAcknowledged || a.Comment != comment {
			t.Errorf("journaled action %+v; want an acknowledgement with the comment", a)
		}
	}

	// The source's points: the ones in alarm marked; the trend's axis.
	b.run("open the trend", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_trend`)))
	b.waitFor("nh3-gas-1 marked in alarm, its trend drawn", `document.getElementById('source-dialog').open && !!document.querySelector('#point-rows tr.alarming[data-point="nh3-gas-1"][data-alarm="red"]') && !!document.querySelector('#trend path.series')`, 20*time.Second)
	var marked []string
	b.eval(`[...document.querySelectorAll('#point-rows tr.alarming')].map(tr => tr.dataset.point)`, &marked)
	if indexOf(marked, "nh3-gas-2") < 0 || indexOf(marked, "nh3-gas-3") >= 0 {
		t.Errorf("points marked in alarm %v; want nh3-gas-1 and nh3-gas-2, not nh3-gas-3", marked)
	}
	var axis struct {
		Min     float64 `json:"min"`
		Overlap bool    `json:"overlap"`
	}
	b.eval(`(() => { const box = document.getElementById('trend'); const u = box.querySelector('.unit'); const ticks = [...box.querySelectorAll('.y-tick')];
		const ub = u.getBBox(); const overlap = ticks.some(tk => { const b = tk.getBBox(); return b.x < ub.x + ub.width && ub.x < b.x + b.width && b.y < ub.y + ub.height && ub.y < b.y + b.height; });
		return {min: Number(box.dataset.yMin), overlap}; })()`, &axis)
	if axis.Min < 0 || axis.Overlap {
		t.Errorf("trend axis from %v, unit over a tick: %v; want no axis below 0 for ppm and the unit clear", axis.Min, axis.Overlap)
	}
	b.screenshot("console-points-in-alarm.png", "#source-dialog")
	b.run("close the trend", chromedp.Click(chromedp.CSS(`#source-dialog button.close`)))

	// The disposal record.
	b.run("open the disposal dialog", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_disposal`)))
	b.waitFor("the disposal dialog with the officer's name", `document.getElementById('disposal-dialog').open && document.getElementById('disposal-officer').value === '`+shown+`'`, 10*time.Second)
	b.eval(`document.getElementById('disposal-cause').value = 'leak'; true`, nil)
	b.run("fill in and file the disposal record",
		chromedp.SendKeys(chromedp.CSS("#disposal-found"), "1#罐出口法兰垫片泄漏"),
		chromedp.SendKeys(chromedp.CSS("#disposal-measures"), "关闭根阀，水幕稀释，更换垫片"),
		chromedp.Click(chromedp.CSS("#disposal-emergency")),
	)
	b.screenshot("console-disposal.png", "#disposal-dialog")
	b.run("file it", chromedp.Click(chromedp.CSS("#disposal-submit")))
	b.waitFor("the disposal shown on the incident", `!document.getElementById('disposal-dialog').open && `+inc+`.querySelector('.note').textContent.includes('`+consoleOfficerDisplay+`') && `+inc+`.querySelector('button.incident_disposal').hidden`, 20*time.Second)
	b.run("open the incident's timeline", chromedp.Click(chromedp.CSS(`#incident-rows tr button.incident_timeline`)))
	b.waitFor("the acknowledgement and the disposal in the timeline", `[...document.querySelectorAll('#timeline-rows tr[data-type="acknowledged"] td')].some(td => td.textContent === '`+officer+`') && [...document.querySelectorAll('#timeline-rows tr[data-type="disposal_recorded"] td')].some(td => td.textContent.includes('法兰垫片'))`, 10*time.Second)
	b.screenshot("console-incident-timeline.png", "#timeline-dialog")
	b.run("close the timeline", chromedp.Click(chromedp.CSS(`#timeline-dialog button.close`)))

	// The leak stops: the incident closes and leaves the list.
	for point := range map[string]bool{"nh3-gas-1": true, "nh3-gas-2": true} {
		if err := cc.sim.Set(point, 2); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor("the incident closed", `document.querySelectorAll('#incident-rows tr').length === 0 && !document.getElementById('no-incidents').hidden`, 90*time.Second)
	got, ok, err := cc.c.Alerting().Incident(ctx, id)
	if err != nil || !ok || got.State != incident.Closed || got.Disposal == nil || got.Disposal.By != officer || got.Disposal.Cause != incident.CauseLeak ||
		!got.Disposal.EmergencyResponse || got.WorstGrade != protocol.Red {
		t.Errorf("closed incident %+v %v", got, err)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors in the console:\n%s", strings.Join(errs, "\n"))
	}
}
