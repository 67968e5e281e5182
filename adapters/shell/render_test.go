package shell

import (
	"testing"

	"github.com/chimaops/chima/core/chat"
)

func TestRender(t *testing.T) {
	general := header{room: "general", bot: "chima"}
	tests := []struct {
		name string
		h    header
		out  chat.Output
		ansi bool
		want string
	}{
		{
			name: "text goes on the header's line",
			h:    general,
			out:  chat.Text("hello"),
			want: "[general] chima: hello\n",
		},
		{
			name: "markup in text and fields shows plain",
			h:    general,
			out:  chat.Output{Text: "**Deploy** of `x`: [log](https://ci.io/1)\n* web_1", Fields: []chat.Field{{Title: "Env", Value: "_edge_"}}},
			want: "[general] chima: Deploy of x: log (https://ci.io/1)\n  - web_1\n  Env: edge\n",
		},
		{
			name: "a thread reply names its thread",
			h:    header{room: "general", thread: "m3", bot: "chima"},
			out:  chat.Text("on it"),
			want: "[general ↳ m3] chima: on it\n",
		},
		{
			name: "an edit names the message it replaces",
			h:    header{room: "general", thread: "m3", bot: "chima", edit: "b4"},
			out:  chat.Text("done"),
			want: "[general ↳ m3] chima (edit b4): done\n",
		},
		{
			name: "more lines of text are indented",
			h:    general,
			out:  chat.Text("one\ntwo\n\nfour  "),
			want: "[general] chima: one\n  two\n\n  four\n",
		},
		{
			name: "title, text, fields, code and buttons",
			h:    general,
			out: chat.Output{
				Title:   "Deploy finished",
				Text:    "project-x is live",
				Fields:  []chat.Field{{Title: "Environment", Value: "edge"}, {Title: "Log", Value: "line 1\nline 2"}, {Value: "untitled"}},
				Code:    "$ make\nok\n",
				Buttons: []chat.Button{{Label: "Roll back", Command: "chima rollback project-x"}},
				Status:  "good",
			},
			want: "[general] chima: Deploy finished\n" +
				"  project-x is live\n" +
				"  Environment: edge\n" +
				"  Log: line 1\n" +
				"    line 2\n" +
				"  untitled\n" +
				"    $ make\n" +
				"    ok\n" +
				"  [Roll back] type: chima rollback project-x\n",
		},
		{
			name: "a button without a command shows as its label",
			h:    general,
			out:  chat.Output{Text: "pick", Buttons: []chat.Button{{Label: "Keep", ActionID: "chima.plugin:deploy:keep", Value: "v"}}},
			want: "[general] chima: pick\n  [Keep]\n",
		},
		{
			name: "without title or text the body starts on the next line",
			h:    general,
			out:  chat.Output{Fields: []chat.Field{{Title: "Env", Value: "edge"}}, Code: "x"},
			want: "[general] chima:\n  Env: edge\n    x\n",
		},
		{
			name: "the fallback shows when nothing else does",
			h:    general,
			out:  chat.Output{Fallback: "plain"},
			want: "[general] chima: plain\n",
		},
		{
			name: "the fallback is not repeated next to the parts",
			h:    general,
			out:  chat.Output{Text: "rich", Fallback: "plain"},
			want: "[general] chima: rich\n",
		},
		{
			name: "an empty output is an empty post",
			h:    general,
			out:  chat.Output{},
			want: "[general] chima:\n",
		},
		{
			name: "control characters cannot drive the terminal",
			h:    general,
			out:  chat.Text("red \x1b[31malert\x1b[0m\r\nnext\x07"),
			want: "[general] chima: red [31malert[0m\n  next\n",
		},
		{
			name: "interactive titles are bold and coloured by status",
			h:    general,
			out:  chat.Output{Title: "Failed", Text: "see log", Status: "danger"},
			ansi: true,
			want: "[general] chima: \x1b[1;31mFailed\x1b[0m\n  see log\n",
		},
		{
			name: "interactive titles without status are bold",
			h:    general,
			out:  chat.Output{Title: "Note"},
			ansi: true,
			want: "[general] chima: \x1b[1mNote\x1b[0m\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(tc.h, tc.out, tc.ansi); got != tc.want {
				t.Errorf("render:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
