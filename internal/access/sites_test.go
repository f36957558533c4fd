package access

import (
	"slices"
	"testing"

	"github.com/hazardwatch/hazardwatch/site"
)

func TestScopeSeesSitesInForce(t *testing.T) {
	sites := []*site.Site{
		{ID: "jh-chem", Region: "350404", EnterpriseCode: "E1"},
		{ID: "xs-coal", Region: "350481", EnterpriseCode: "E2"},
		{ID: "no-region"},
	}
	ids := []string{"jh-chem", "xs-coal", "no-region", "not-in-files"}
	for _, c := range []struct {
		scope Scope
		want  []string
	}{
		{Scope{}, ids},
		{Scope{Region: "3504"}, []string{"jh-chem", "xs-coal"}},
		{Scope{Region: "350481"}, []string{"xs-coal"}},
		{Scope{Enterprises: []string{"E1"}}, []string{"jh-chem"}},
		{Scope{Sites: []string{"no-region", "not-in-files"}}, []string{"no-region", "not-in-files"}},
		{Scope{Region: "35", Sites: []string{"not-in-files"}}, nil},
	} {
		got := Keep(ids, func(s string) string { return s }, c.scope.Sees(sites))
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("scope %+v sees %v, want %v", c.scope, got, c.want)
		}
	}
}
