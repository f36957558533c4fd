package overview

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// LatestReader returns the newest reading of each point (every site when
// site is empty): the ingest service's copy in memory, or a store.
type LatestReader interface {
	Latest(ctx context.Context, site string) ([]storage.Sample, error)
}

// Config is what Handler reads the picture from.
type Config struct {
	Sites  func() []*site.Site
	Grades func() []protocol.SourceGrade
	// Readings gives the points' newest readings for the online rate; nil:
	// every point counts as online.
	Readings LatestReader
	// Incidents gives the sources' incident counts by "site/source"; nil:
	// none.
	Incidents func() map[string]Incidents
	Now       func() time.Time
	Logger    *zap.Logger
}

// Handler serves GET /api/sources and GET /api/regions for the principal
// that access.Middleware put into the request: each sees exactly its scope.
func Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/sources", access.Require(access.View, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.FromContext(r.Context())
		writeJSON(w, Sources(cfg.inputs(r.Context()), p.Scope))
	})))
	mux.Handle("GET /api/regions", access.Require(access.View, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.FromContext(r.Context())
		writeJSON(w, Tree(cfg.inputs(r.Context()), p.Scope))
	})))
	return mux
}

func (cfg Config) inputs(ctx context.Context) Inputs {
	in := Inputs{Sites: cfg.Sites(), Grades: map[string]protocol.Grade{}}
	for _, g := range cfg.Grades() {
		in.Grades[g.Site+"/"+g.Source] = g.Grade
	}
	if cfg.Incidents != nil {
		in.Incidents = cfg.Incidents()
	}
	if cfg.Readings != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		newest, err := cfg.Readings.Latest(ctx, "")
		if err != nil {
			cfg.Logger.Warn("overview: newest readings for the online rate", zap.Error(err))
		} else {
			in.Fresh = Freshness(in.Sites, newest, cfg.Now())
		}
	}
	return in
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
