package bot

import (
	"testing"

	"github.com/chimaops/chima/core/store"
)

func TestJobsAreNamedByTheirTitleElseByPluginKindAndID(t *testing.T) {
	cases := []struct {
		name string
		job  store.Job
		want string
	}{
		{"a title starts the sentence", store.Job{ID: 8, Plugin: "deploy", Kind: "deploy", Title: "deployment #3 of demo/main to staging"},
			"Deployment #3 of demo/main to staging"},
		{"no title", store.Job{ID: 8, Plugin: "deploy", Kind: "deploy"}, "The deploy plugin's deploy job (#8)"},
		{"a title in another script", store.Job{ID: 1, Plugin: "p", Kind: "k", Title: "émission #1"}, "Émission #1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := jobName(c.job); got != c.want {
				t.Fatalf("jobName = %q, want %q", got, c.want)
			}
		})
	}
}
