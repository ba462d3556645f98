package events

import "testing"

func TestFanOutAndSlowSubscribers(t *testing.T) {
	var b Broker
	fast, stopFast := b.Subscribe()
	defer stopFast()
	slow, stopSlow := b.Subscribe()
	defer stopSlow()

	b.Publish(Event{Type: Created, ContainerID: "c1"})
	if e := <-fast; e.Type != Created || e.ContainerID != "c1" || e.At.IsZero() {
		t.Fatalf("fast got %+v", e)
	}
	// slow never reads: after its buffer fills, its channel is closed.
	for i := 0; i < subscriberBuffer+1; i++ {
		b.Publish(Event{Type: Started, ContainerID: "c2"})
		<-fast
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("slow subscriber got %d events before being cut off; want %d", n, subscriberBuffer)
	}
	stopSlow() // unsubscribing after being cut off is harmless
	var nilBroker *Broker
	nilBroker.Publish(Event{}) // a service without a broker publishes nothing
}
