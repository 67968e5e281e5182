package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestDeliveryIsHandledOnceAndAFailedOneAgain(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	d := Delivery{Source: "github", ID: "72d3162e", Event: "deployment", Payload: []byte(`{"a":1}`),
		Headers: map[string]string{"X-GitHub-Event": "deployment"}}
	lease := time.Minute

	steps := []struct {
		name      string
		at        time.Duration // after base
		claim     Claim
		handledBy []string // the stored plugins that took it, at the claim
		finish    func() error
	}{
		{"a new delivery is recorded and claimed", 0, ClaimNew, nil, func() error {
			return s.FinishDelivery(ctx, "github", d.ID, []string{"deploy"}, "plugin cistatus: unavailable")
		}},
		{"its redelivery after a failure is claimed again, knowing who took it", time.Second, ClaimRetry, []string{"deploy"}, nil},
		{"a second redelivery while that claim runs is busy", 2 * time.Second, ClaimBusy, []string{"deploy"}, nil},
		{"once the claim lapsed (its process died) it is claimed again", 2 * time.Minute, ClaimRetry, []string{"deploy"}, func() error {
			return s.FinishDelivery(ctx, "github", d.ID, []string{"cistatus"}, "")
		}},
		{"after it was handled a redelivery is dropped", 3 * time.Minute, ClaimHandled, []string{"cistatus", "deploy"}, nil},
	}
	for _, st := range steps {
		clock.set(base.Add(st.at))
		got, claim, err := s.ClaimDelivery(ctx, d, lease)
		if err != nil || claim != st.claim || !slices.Equal(got.HandledBy, st.handledBy) {
			t.Fatalf("%s: claim = %v %v handled by %v, want %v %v", st.name, claim, err, got.HandledBy, st.claim, st.handledBy)
		}
		if st.finish != nil {
			if err := st.finish(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
	}
	got, err := s.GetDelivery(ctx, "github", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != DeliveryHandled || got.Payload != nil || got.Attempts != 3 || got.Event != "deployment" ||
		got.Headers["X-GitHub-Event"] != "deployment" || got.LastError != "" {
		t.Fatalf("stored delivery = %+v", got)
	}
}

func TestFailedDeliveryKeepsItsPayloadAndReason(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := Delivery{Source: "github", ID: "d1", Event: "deployment", Payload: []byte(`{"deployment":`)}
	if _, claim, err := s.ClaimDelivery(ctx, d, time.Minute); err != nil || claim != ClaimNew {
		t.Fatalf("claim = %v %v", claim, err)
	}
	if err := s.FinishDelivery(ctx, "github", "d1", nil, "plugin deploy refused it: decode deployment event"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDelivery(ctx, "github", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != DeliveryFailed || string(got.Payload) != `{"deployment":` || got.LastError == "" || got.HandledBy != nil {
		t.Fatalf("stored delivery = %+v", got)
	}
}

func TestDeliveriesSeenBeforeTheyWereRecordedInFullCountAsHandled(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// What the previous schema wrote for every delivery it saw.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES ('github', 'old', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, claim, err := s.ClaimDelivery(ctx, Delivery{Source: "github", ID: "old"}, time.Minute); err != nil || claim != ClaimHandled {
		t.Fatalf("claim = %v %v", claim, err)
	}
}

func TestFinishingAnUnknownDeliveryFails(t *testing.T) {
	s, _ := newStore(t)
	if err := s.FinishDelivery(context.Background(), "github", "nope", nil, ""); err == nil {
		t.Fatal("finished a delivery never claimed")
	}
}
