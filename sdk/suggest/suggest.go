// Package suggest names the likely intended word for a typo: the key a
// person meant when they wrote an unknown one in chima.yaml or in a plugin's
// settings ("nmae" → "name"). The bot's config loader and the SDK's settings
// decoder both use it, so they suggest alike.
package suggest

// Closest returns the candidate within two edits of name (an insertion, a
// deletion, a substitution or a swap of adjacent characters each count one),
// to suggest for a typo; "" when none is that close, or when the closest is
// no longer than the edits it would take.
func Closest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := distance(name, c); d < bestDist && d < len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo of a key name
	}
	// three rows suffice: i-2, i-1, i
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
