// Package shell is the local console adapter, Chima's embedded default: a
// person talks to the bot from a terminal, switching rooms, users and threads
// with console commands, and sees the bot's posts, thread replies and edits
// as lines of text.
//
// Console commands are handled by the adapter and never reach the bot:
//
//	/room NAME   post in room NAME (leaves the thread and direct messages)
//	/user NAME   post as user NAME
//	/dm          toggle direct messages to the bot, in room "@user"
//	/thread ID   post in the thread of message ID; /thread alone leaves it
//	/help        list the commands
//	/quit        end Run (Ctrl-D, the end of the input, or Ctrl-C twice too)
//	//text       send "/text" to the bot
//
// Every other line is a chat.Message with ids "m1", "m2", …; bot posts are
// numbered "b1", "b2", … and shown as
//
//	[general] chima: text
//	[general ↳ m3] chima: a reply in the thread of m3
//	[general ↳ m3] chima (edit b4): the new content of b4
//
// with fields, code and buttons ("[Label] type: command") on indented lines.
//
// In interactive mode lines are edited with github.com/chzyer/readline
// (history in memory, prompt "room user> "), and output goes through
// readline so the prompt and the line being typed are redrawn under it.
// Ctrl-C works as in node's REPL: the first clears the line and says how to
// quit, a second one within Options.QuitWindow (3 s) ends Run.
// Otherwise lines are read with a bufio.Scanner, for pipes and tests.
//
// Run honours ctx even while blocked on input: In is read by a goroutine of
// its own behind a reader that Run abandons at once, then Run closes In (when
// it is an io.Closer other than os.Stdin) so that goroutine ends too.
package shell
