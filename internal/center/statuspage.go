package center

import (
	"html/template"
	"net/http"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// statusTmpl is a plain page that refreshes itself: every hazard source
// coloured by its grade, the present alarms, the gateways. It needs no
// script, so it works on any browser in a control room.
var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"color": func(g protocol.Grade) string {
		return map[protocol.Grade]string{protocol.Red: "#d32f2f", protocol.Orange: "#f57c00", protocol.Yellow: "#fbc02d", protocol.Blue: "#1976d2"}[g]
	},
	"zh":    func(g protocol.Grade) string { return g.Chinese() },
	"clock": func(t protocol.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>HazardWatch 重大危险源监测预警</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:1.5em;background:#fafafa;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:.8em}.src{width:15em;padding:.8em;border-radius:6px;background:#43a047;color:#fff}
.src small{display:block;opacity:.85}table{border-collapse:collapse;margin-top:.5em;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;font-size:.95em}
.g{display:inline-block;padding:.1em .5em;border-radius:4px;color:#fff}
</style></head><body>
<h1>重大危险源监测预警 <small style="font-size:.5em;color:#777">更新于 {{clock .Time}}</small></h1>
<h2>危险源</h2><div class="grid">
{{range .Sources}}<div class="src" {{with color .Grade}}style="background:{{.}}"{{end}}><b>{{.Name}}</b>
<small>{{.SiteName}} · GB 18218 {{.GB18218}} 级</small><small>{{if .Grade}}{{zh .Grade}}{{else}}正常{{end}}</small></div>
{{end}}</div>
<h2>报警（{{len .Alarms}}）</h2>
<table><tr><th>等级</th><th>状态</th><th>报警</th><th>说明</th></tr>
{{range .Alarms}}<tr><td><span class="g" style="background:{{color .Grade}}">{{zh .Grade}}</span></td><td>{{.State}}</td><td>{{.ID}}</td><td>{{.Message}}</td></tr>
{{else}}<tr><td colspan="4">无报警</td></tr>{{end}}</table>
<h2>网关</h2><table><tr><th>站点</th><th>网关</th><th>状态</th></tr>
{{range .Gateways}}<tr><td>{{.Site}}</td><td>{{.Gateway}}</td><td>{{.State}}</td></tr>{{else}}<tr><td colspan="3">尚无网关上线</td></tr>{{end}}</table>
<p style="color:#777">JSON: <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> · <a href="/api/deadletters">/api/deadletters</a></p>
</body></html>`))

func (c *Center) statusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTmpl.Execute(w, c.Status().cut(c.sees(r))); err != nil {
		c.log.Warn("render status page", zap.Error(err))
	}
}
