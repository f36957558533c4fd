package allinone

import (
	"net/url"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/site/regions"
)

// Link is a console link of one of the demo's accounts.
type Link struct {
	Who  string // e.g. "city officer 三明市"
	User string
	URL  string // logs in through the fragment, then opens the page
}

// levelAccounts are the demo's accounts of the city's three levels around
// the site the scenario plays at: the city's and the county's supervisors
// (the regions overview), the enterprise's operator (the console), and a
// viewer for the city's wall screen. They share the demo officer's
// password. None when the site has no known county.
func levelAccounts(s *site.Site, hash string) ([]access.Account, []levelLink) {
	if s == nil {
		return nil, nil
	}
	path := regions.Path(s.Region)
	if len(path) == 0 || path[len(path)-1].Level != regions.County {
		return nil, nil
	}
	county := path[len(path)-1]
	city := county
	if len(path) >= 2 {
		city = path[len(path)-2]
	}
	operator := access.Scope{Sites: []string{s.ID}}
	if s.EnterpriseCode != "" {
		operator = access.Scope{Enterprises: []string{s.EnterpriseCode}}
	}
	accounts := []access.Account{
		{Name: "city", Display: city.Name + "应急管理局值班员", Role: access.Supervisor, Scope: access.Scope{Region: city.Prefix()}, PasswordHash: hash},
		{Name: "county", Display: county.Name + "应急管理局值班员", Role: access.Supervisor, Scope: access.Scope{Region: county.Prefix()}, PasswordHash: hash},
		{Name: "operator", Display: s.Name + "值班员", Role: access.Officer, Scope: operator, PasswordHash: hash},
		{Name: "wall", Display: city.Name + "指挥大屏", Role: access.Viewer, Scope: access.Scope{Region: city.Prefix()}, PasswordHash: hash},
	}
	links := []levelLink{
		{who: "city officer, " + city.Name, user: "city", next: "/regions"},
		{who: "county officer, " + county.Name, user: "county", next: "/regions"},
		{who: "enterprise operator, " + s.Name, user: "operator"},
		{who: "wall screen, " + city.Name, user: "wall", next: "/wall"},
	}
	return accounts, links
}

type levelLink struct{ who, user, next string }

// url is the link's console address with the login in the fragment.
func (l levelLink) url(base, password string) Link {
	v := url.Values{"user": {l.user}, "password": {password}}
	if l.next != "" {
		v.Set("next", l.next)
	}
	return Link{Who: l.who, User: l.user, URL: base + "/#" + v.Encode()}
}
