package ingest

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/hazardwatch/hazardwatch/site"
)

// Shard is node Index of Count ingest nodes sharing the load by site: each
// site belongs to exactly one node, chosen by a hash of its id, so every
// node loads the same site files and the rules see all of a site's points.
type Shard struct{ Index, Count int }

// ParseShard reads "k/n" (node k of n, counting from 0); "" is the only
// node.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{0, 1}, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return Shard{}, fmt.Errorf("shard %q is not k/n with 0 ≤ k < n, e.g. 0/2 and 1/2 for two nodes", s)
	}
	return Shard{k, n}, nil
}

// Owns reports whether the site belongs to this node.
func (sh Shard) Owns(siteID string) bool {
	if sh.Count <= 1 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(siteID))
	return int(h.Sum32()%uint32(sh.Count)) == sh.Index
}

// Sites keeps the sites this node owns.
func (sh Shard) Sites(all []*site.Site) []*site.Site {
	var out []*site.Site
	for _, s := range all {
		if sh.Owns(s.ID) {
			out = append(out, s)
		}
	}
	return out
}

func (sh Shard) String() string { return strconv.Itoa(sh.Index) + "/" + strconv.Itoa(sh.Count) }
