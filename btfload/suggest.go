package btfload

import (
	"sort"
	"strings"
)

// Closest returns up to n of candidates closest to name by edit distance
// (ignoring case), nearest first, leaving out those too far to be a typo
// or a near miss. Candidates containing name, or contained in it, count as
// close.
func Closest(name string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	lname := strings.ToLower(name)
	limit := max(2, len(name)/3)
	var best []scored
	seen := map[string]bool{}
	for _, c := range candidates {
		if c == name || seen[c] {
			continue
		}
		lc := strings.ToLower(c)
		var d int
		switch {
		case len(lname) >= 4 && strings.Contains(lc, lname):
			d = 1 + (len(lc)-len(lname))/8
		case len(lc) >= 4 && strings.Contains(lname, lc):
			d = 1 + (len(lname)-len(lc))/8
		default:
			if abs(len(lc)-len(lname)) > limit {
				continue
			}
			d = editDistance(lname, lc, limit)
		}
		if d > limit {
			continue
		}
		seen[c] = true
		best = append(best, scored{c, d})
	}
	sort.SliceStable(best, func(i, j int) bool {
		if best[i].d != best[j].d {
			return best[i].d < best[j].d
		}
		return best[i].s < best[j].s
	})
	var out []string
	for i := 0; i < len(best) && i < n; i++ {
		out = append(out, best[i].s)
	}
	return out
}

// SuggestSuffix formats suggestions for an error: "; did you mean a, b?",
// or "" when there are none.
func SuggestSuffix(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(s, ", ") + "?"
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the optimal-string-alignment distance of a and b
// (Levenshtein with adjacent transpositions costing 1: "pdi" is 1 from
// "pid"), or limit+1 once it must exceed limit.
func editDistance(a, b string, limit int) int {
	pprev := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pprev[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		pprev, prev, cur = prev, cur, pprev
	}
	return prev[len(b)]
}
