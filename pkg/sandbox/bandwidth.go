package sandbox

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/sandbox/cni"
)

// The pod annotations the kubelet documents for traffic shaping, read by
// the CNI bandwidth plugin through the bandwidth capability.
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// bandwidth turns the annotations (Kubernetes quantities in bits per second,
// e.g. "10M") into the capability; nil when neither is set. The burst is the
// kubelet's convention: large enough never to be the limit.
func bandwidth(annotations map[string]string) (*cni.Bandwidth, error) {
	parse := func(key string) (uint64, error) {
		v, ok := annotations[key]
		if !ok {
			return 0, nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			return 0, fmt.Errorf("annotation %s=%q is not a positive quantity of bits per second: %w", key, v, errdefs.ErrInvalidArgument)
		}
		return uint64(q.Value()), nil
	}
	in, err := parse(IngressBandwidthAnnotation)
	if err != nil {
		return nil, err
	}
	out, err := parse(EgressBandwidthAnnotation)
	if err != nil {
		return nil, err
	}
	if in == 0 && out == 0 {
		return nil, nil
	}
	const unlimitedBurst = 1<<31 - 1 // bytes; what the kubelet passes
	b := &cni.Bandwidth{}
	if in > 0 {
		b.IngressRate, b.IngressBurst = in, unlimitedBurst
	}
	if out > 0 {
		b.EgressRate, b.EgressBurst = out, unlimitedBurst
	}
	return b, nil
}
