package chat

import "context"

type sendKeyCtx struct{}

// WithSendKey returns ctx carrying key, the same for every attempt to post
// one message: the outbox sets it, so that an adapter whose service
// deduplicates a retried post (Mattermost's pending_post_id) can say that
// an attempt whose answer was lost is the same post, not another one.
func WithSendKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, sendKeyCtx{}, key)
}

// SendKey returns the key WithSendKey put in ctx, or "".
func SendKey(ctx context.Context) string {
	k, _ := ctx.Value(sendKeyCtx{}).(string)
	return k
}
