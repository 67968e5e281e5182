package suggest

import "testing"

func TestClosestSuggestsOnlyWordsWithinTwoEdits(t *testing.T) {
	keys := []string{"name", "path", "schedule", "room"}
	for _, c := range []struct{ typo, want string }{
		{"nmae", "name"},        // a swap is one edit
		{"schedul", "schedule"}, // a deletion
		{"rooom", "room"},       // an insertion
		{"paht", "path"},
		{"retention", ""}, // nothing close
		{"xy", ""},        // closer to nothing than its own length
	} {
		if got := Closest(c.typo, keys); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.typo, got, c.want)
		}
	}
}
