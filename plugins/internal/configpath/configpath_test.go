package configpath

import "testing"

func TestResolve(t *testing.T) {
	tests := []struct {
		name, dir, p, want string
	}{
		{"a relative path is against chima.yaml's folder", "/etc/chima", "apps.json", "/etc/chima/apps.json"},
		{"a relative path into a subfolder is cleaned", "/etc/chima", "./conf/../apps.json", "/etc/chima/apps.json"},
		{"an absolute path is kept", "/etc/chima", "/srv/apps.json", "/srv/apps.json"},
		{"an empty path stays empty", "/etc/chima", "", ""},
		{"without a folder the path is kept", "", "apps.json", "apps.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(tt.dir, tt.p); got != tt.want {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tt.dir, tt.p, got, tt.want)
			}
		})
	}
}
