package mattermost

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// catchUpSlack is how far before the adapter last heard from the server
// catchUp looks: the server's clock and this one's may differ a little,
// and a post may have been made as the websocket went. Posts handled
// already are skipped by id.
const catchUpSlack = 10 * time.Second

// catchUp hands h, oldest first, the posts made in the bot's channels since
// the adapter last heard from the server (Options.CatchUp at most), which a
// websocket that was down never delivered: Mattermost sends events to
// connected clients only. It asks for the bot's channels of the team
// (direct and group ones included), then for the posts of each channel
// whose last post is that recent (GET /channels/{id}/posts?since=…).
// Failures are logged: the websocket is up, and what comes next is served.
func (a *Adapter) catchUp(ctx context.Context, h chat.Handler) {
	now := time.Now()
	since := max(a.heard-catchUpSlack.Milliseconds(), a.started)
	if oldest := now.Add(-a.opts.CatchUp).UnixMilli(); since < oldest {
		a.log.Warn("mattermost: the websocket was down longer than the catch-up window: posts made before it are not answered",
			"down_since", time.UnixMilli(a.heard), "catch_up", a.opts.CatchUp)
		since = oldest
	}
	posts, err := a.missed(ctx, since)
	if err != nil {
		a.log.Warn("mattermost: cannot fetch the posts made while the websocket was down", "err", err)
	}
	if len(posts) > 0 {
		a.log.Info("mattermost: handling posts made while the websocket was down", "posts", len(posts))
	}
	for _, m := range posts {
		if ctx.Err() != nil {
			return
		}
		a.handlePost(ctx, h, &m.post, m.direct, m.sender)
	}
}

// missedPost is a post catchUp fetched, with what a posted event says
// beside it.
type missedPost struct {
	post   postedPost
	direct bool
	sender string
}

// missed fetches the posts made since (unix ms) in the bot's channels,
// oldest first, without those handled already.
func (a *Adapter) missed(ctx context.Context, since int64) ([]missedPost, error) {
	c := a.client(ctx)
	if a.teamID == "" {
		team, resp, err := c.GetTeamByName(a.opts.Team, "")
		if err != nil {
			return nil, apiError("get team "+a.opts.Team, resp, err, nil)
		}
		a.teamID = team.Id
	}
	self := a.Self()
	channels, resp, err := c.GetChannelsForTeamForUser(a.teamID, self.ID, false, "")
	if err != nil {
		return nil, apiError("list the bot's channels", resp, err, nil)
	}
	var out []missedPost
	names := map[string]string{} // user id → username
	var errs []error
	for _, ch := range channels {
		if ch.LastPostAt < since {
			continue
		}
		list, resp, err := c.GetPostsSince(ch.Id, since, false)
		if err != nil {
			errs = append(errs, apiError("get posts of "+ch.Id, resp, err, nil))
			continue
		}
		direct := ch.Type == model.ChannelTypeDirect
		// Order is newest first; posts of one millisecond keep it.
		for i := len(list.Order) - 1; i >= 0; i-- {
			p := list.Posts[list.Order[i]]
			if p == nil {
				continue
			}
			// since also returns posts edited or deleted since: only new
			// ones are commands.
			if p.CreateAt < since || p.ChannelId != ch.Id {
				continue
			}
			if _, dup := a.handled.get(p.Id); dup {
				continue
			}
			var pp postedPost
			raw, err := json.Marshal(p)
			if err == nil {
				err = json.Unmarshal(raw, &pp)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("decoding post %s: %w", p.Id, err))
				continue
			}
			name, ok := names[p.UserId]
			if !ok && p.UserId != self.ID {
				if u, err := a.LookupUser(ctx, p.UserId); err == nil {
					name = u.Name
				}
				names[p.UserId] = name
			}
			out = append(out, missedPost{post: pp, direct: direct, sender: name})
		}
	}
	slices.SortStableFunc(out, func(x, y missedPost) int { return cmp.Compare(x.post.CreateAt, y.post.CreateAt) })
	if len(errs) > 0 {
		return out, fmt.Errorf("mattermost: catching up: %v", errs)
	}
	return out, nil
}
