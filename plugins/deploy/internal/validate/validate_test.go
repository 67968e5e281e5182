package validate

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/sdktest"
	"unicode"
	"unicode/utf8"
)

func TestRef(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		wantErr string // substring; "" means valid
	}{
		{"accepts a plain branch", "main", ""},
		{"accepts a branch with slashes", "feature/login-form", ""},
		{"accepts a full ref", "refs/heads/main", ""},
		{"accepts a tag-like name with dots", "v1.2.3", ""},
		{"accepts a pull request ref", "pull/12/head", ""},
		{"accepts upper case and underscores", "Fix_Bug-12", ""},
		{"accepts a full SHA-1", "0123456789abcdef0123456789abcdef01234567", ""},
		{"accepts a short SHA", "0123abc", ""},
		{"accepts non-ASCII letters", "café", ""},
		{"accepts @ inside a name", "user@feature", ""},
		{"refuses an empty ref", "", "an empty ref is not allowed"},
		{"refuses a leading dash", "-main", `ref "-main" is not allowed: it starts with "-"`},
		{"refuses an option-looking ref", "--upload-pack=evil", `starts with "-"`},
		{"refuses a semicolon", "main;reboot", `ref "main;reboot" is not allowed: it contains ";"`},
		{"refuses an ampersand", "a&b", `contains "&"`},
		{"refuses a pipe", "a|b", `contains "|"`},
		{"refuses a dollar", "$HOME", `contains "$"`},
		{"refuses a backtick", "a`id`", "contains \"`\""},
		{"refuses parentheses", "a(b)", `contains "("`},
		{"refuses redirections", "a>b", `contains ">"`},
		{"refuses braces", "a{b}", `contains "{"`},
		{"refuses brackets", "a[b]", `contains "["`},
		{"refuses a star", "feat*", `contains "*"`},
		{"refuses a question mark", "feat?", `contains "?"`},
		{"refuses an exclamation mark", "feat!", `contains "!"`},
		{"refuses a tilde", "main~1", `contains "~"`},
		{"refuses a single quote", "a'b", `contains "'"`},
		{"refuses a double quote", `a"b`, `contains "\""`},
		{"refuses a backslash", `a\b`, `contains "\\"`},
		{"refuses a caret", "main^", `contains "^"`},
		{"refuses a colon", "a:b", `contains ":"`},
		{"refuses a space", "a b", "contains whitespace"},
		{"refuses a tab", "a\tb", "contains a control character"},
		{"refuses a newline", "main\nreboot", "contains a line break"},
		{"refuses a carriage return", "main\r", "contains a line break"},
		{"refuses a NUL byte", "a\x00b", "contains a control character"},
		{"refuses DEL", "a\x7fb", "contains a control character"},
		{"refuses a non-breaking space", "a\u00a0b", "contains whitespace"},
		{"refuses a right-to-left override", "a\u202eb", "invisible character"},
		{"refuses invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"refuses two dots", "a..b", `contains ".."`},
		{"refuses a parent path", "../../etc/passwd", `contains ".."`},
		{"refuses reflog syntax", "main@{1}", `contains "@{"`},
		{"refuses a lone @", "@", `it is "@"`},
		{"refuses a leading slash", "/main", `starts or ends with "/"`},
		{"refuses a trailing slash", "main/", `starts or ends with "/"`},
		{"refuses a double slash", "a//b", `contains "//"`},
		{"refuses a trailing dot", "main.", `ends with "."`},
		{"refuses a component starting with a dot", "a/.hidden", `starts with "."`},
		{"refuses a leading dot", ".main", `starts with "."`},
		{"refuses a .lock component", "a.lock/b", `ends with ".lock"`},
		{"refuses a .lock suffix", "main.lock", `ends with ".lock"`},
		{"refuses an overlong ref", strings.Repeat("a", MaxRefLen+1), "longer than 255 characters"},
		{"accepts the longest ref", strings.Repeat("a", MaxRefLen), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Ref(tt.ref)
			checkErr(t, err, tt.wantErr, "ref")
		})
	}
}

// TestRefAgreesWithGit checks that every ref Ref accepts is also accepted by
// `git check-ref-format` as a branch, and that refs git refuses are refused.
func TestRefAgreesWithGit(t *testing.T) {
	git := sdktest.NeedTool(t, "git")
	refs := []string{
		"main", "feature/x", "v1.0", "refs/heads/main", "a.b/c-d_e", "café", "user@feature",
		"a..b", "a/.b", ".a", "a.lock", "a/", "/a", "a//b", "a.", "@", "a@{1}", "a b",
		"a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a\x01b", "a\x7fb",
	}
	gitRefused := 0
	for _, ref := range refs {
		cmd := exec.Command(git, "check-ref-format", "--allow-onelevel", "refs/heads/"+ref)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + t.TempDir()}
		gitOK := cmd.Run() == nil
		if !gitOK {
			gitRefused++
		}
		if Ref(ref) == nil && !gitOK {
			t.Errorf("Ref(%q) accepts a ref git refuses", ref)
		}
	}
	if gitRefused < 15 {
		t.Fatalf("git refused only %d refs; the harness is not running git properly", gitRefused)
	}
}

func TestIsFullSHA(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"a SHA-1 is full", strings.Repeat("a1", 20), true},
		{"a SHA-256 is full", strings.Repeat("0f", 32), true},
		{"a short SHA is not full", "abc1234", false},
		{"upper case is not a SHA", strings.Repeat("A1", 20), false},
		{"non-hex is not a SHA", strings.Repeat("g1", 20), false},
		{"a branch is not a SHA", "main", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsFullSHA(tt.s); got != tt.want {
				t.Errorf("IsFullSHA(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestTask(t *testing.T) {
	tests := []struct {
		name    string
		task    string
		wantErr string
	}{
		{"accepts deploy", "deploy", ""},
		{"accepts a namespaced task", "deploy:migrate", ""},
		{"accepts dots dashes and underscores", "db.seed-all_now", ""},
		{"accepts a leading digit", "2fa-reset", ""},
		{"refuses an empty task", "", "an empty task is not allowed"},
		{"refuses a leading dash", "-h", `task "-h" is not allowed: it starts with "-"`},
		{"refuses upper case", "Deploy", "lowercase letters"},
		{"refuses a leading colon", ":deploy", "starting with a letter or digit"},
		{"refuses a slash", "deploy/x", "lowercase letters"},
		{"refuses a semicolon", "deploy;id", `contains ";"`},
		{"refuses an equals sign used as Fabric 1 arguments", "deploy:branch=x", "lowercase letters"},
		{"refuses two dots", "a..b", `contains ".."`},
		{"refuses whitespace", "deploy now", "whitespace"},
		{"refuses an overlong task", strings.Repeat("a", MaxTaskLen+1), "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, Task(tt.task), tt.wantErr, "task")
		})
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{"accepts a simple name", "project-x", ""},
		{"accepts dots and underscores", "my_app.v2", ""},
		{"refuses upper case", "Project", "lowercase letters"},
		{"refuses a slash", "a/b", "lowercase letters"},
		{"refuses a leading dash", "-x", `starts with "-"`},
		{"refuses two dots", "..", `contains ".."`},
		{"refuses empty", "", "an empty environment is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, Name("environment", tt.value), tt.wantErr, "environment")
		})
	}
}

func TestHosts(t *testing.T) {
	tests := []struct {
		name    string
		hosts   string
		want    []string
		wantErr string
	}{
		{"an empty list means no hosts", "", nil, ""},
		{"accepts one host", "web1", []string{"web1"}, ""},
		{"accepts several hosts in order", "web2,web1.example.com,db_1", []string{"web2", "web1.example.com", "db_1"}, ""},
		{"accepts IPv4 addresses", "10.0.0.1,192.168.1.20", []string{"10.0.0.1", "192.168.1.20"}, ""},
		{"refuses an empty entry", "a,,b", nil, "empty entry"},
		{"refuses a trailing comma", "a,", nil, "empty entry"},
		{"refuses spaces after commas", "a, b", nil, "whitespace"},
		{"refuses a leading dash", "-oProxyCommand=x", nil, `starts with "-"`},
		{"refuses a leading dash on a later host", "web1,-x", nil, `host "-x" is not allowed: it starts with "-"`},
		{"refuses a port", "web1:22", nil, "without ports"},
		{"refuses a user", "root@web1", nil, "without user names"},
		{"refuses IPv6", "::1", nil, "IPv6"},
		{"refuses shell metacharacters", "web1;reboot", nil, `contains ";"`},
		{"refuses a label ending in a dash", "web-.example", nil, `starts or ends with "-"`},
		{"refuses a trailing dot", "web1.", nil, "empty part"},
		{"refuses a slash", "web/1", nil, `contains "/"`},
		{"refuses a duplicate host", "web1,WEB1", nil, `lists "WEB1" twice`},
		{"refuses an overlong label", strings.Repeat("a", 64), nil, "longer than 63"},
		{"refuses too many hosts", strings.Repeat("h,", MaxHosts) + "h", nil, "more than 64 hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hosts(tt.hosts)
			if tt.wantErr == "" {
				checkErr(t, err, "", "")
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || (got == nil) != (tt.want == nil) {
					t.Errorf("Hosts(%q) = %q, want %q", tt.hosts, got, tt.want)
				}
				return
			}
			checkErr(t, err, tt.wantErr, "host")
		})
	}
}

func TestErrorQuotesLongValuesShortly(t *testing.T) {
	err := Ref(strings.Repeat("é", 200))
	if err == nil {
		t.Fatal("want an error")
	}
	if len(err.Error()) > 200 || !strings.Contains(err.Error(), "…") || !utf8.ValidString(err.Error()) {
		t.Errorf("message not shortened cleanly: %q", err)
	}
}

func checkErr(t *testing.T, err error, want, field string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want error containing %q, got nil", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *validate.Error", err)
	}
	if field != "" && !strings.HasPrefix(ve.Field, field) {
		t.Errorf("error names field %q, want %q", ve.Field, field)
	}
}

// FuzzRef checks that Ref never panics and that whatever it accepts is safe
// to hand to git as one argv entry.
func FuzzRef(f *testing.F) {
	for _, s := range []string{
		"main", "feature/x", "refs/heads/main", "v1.0", "-x", "a;b", "a..b", "a@{1}",
		"a/.b", "a.lock", "x\ny", "0123456789abcdef0123456789abcdef01234567", "café", "@", "a//b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		err := Ref(ref)
		if err == nil {
			assertSafeRef(t, ref)
			return
		}
		var ve *Error
		if !errors.As(err, &ve) || ve.Field != "ref" || ve.Value != ref {
			t.Fatalf("Ref(%q) returned %#v", ref, err)
		}
	})
}

func assertSafeRef(t *testing.T, ref string) {
	t.Helper()
	bad := func(why string) { t.Fatalf("Ref accepted %q although %s", ref, why) }
	switch {
	case ref == "" || len(ref) > MaxRefLen:
		bad("its length is out of range")
	case !utf8.ValidString(ref):
		bad("it is not UTF-8")
	case strings.HasPrefix(ref, "-"):
		bad("it starts with -")
	case strings.Contains(ref, ".."), strings.Contains(ref, "@{"), strings.Contains(ref, "//"):
		bad("it contains a forbidden sequence")
	case strings.ContainsAny(ref, Metacharacters+"^:"):
		bad("it contains a metacharacter")
	case strings.HasPrefix(ref, "/"), strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, "."), ref == "@":
		bad("git refuses its shape")
	}
	for _, r := range ref {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsGraphic(r) {
			bad("it contains whitespace or control characters")
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			bad("git refuses one of its components")
		}
	}
}
