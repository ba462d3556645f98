package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/safego"
)

// Auth is the credential a pull presents to the registry.
type Auth struct {
	Username, Password string
	IdentityToken      string // an OAuth refresh token
	RegistryToken      string // a bearer token sent as is
}

func (a *Auth) fingerprint() string {
	if a == nil {
		return ""
	}
	h := sha256.Sum256([]byte(a.Username + "\x00" + a.Password + "\x00" + a.IdentityToken + "\x00" + a.RegistryToken))
	return hex.EncodeToString(h[:8])
}

// flight is one pull in progress, shared by every caller asking for the
// same name with the same credentials.
type flight struct {
	key     string
	done    chan struct{}
	img     *Image
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Pull fetches name (short, tagged and/or digested) into the store and
// returns the image. Concurrent pulls of one name share one download. The
// download does not depend on any one caller: it stops only when every
// caller waiting for it has gone, and layers already stored are reused by
// the next attempt. A download being stopped is no longer shared: a caller
// coming then (the kubelet's retry) starts a new one.
func (s *Service) Pull(ctx context.Context, name string, auth *Auth) (*Image, error) {
	if _, err := parseName(name); err != nil {
		return nil, err
	}
	name = dropTagIfDigested(name)
	key := name + "\x00" + auth.fingerprint()

	s.pullsMu.Lock()
	f, joined := s.pulls[key]
	if !joined {
		pullCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{key: key, done: make(chan struct{}), cancel: cancel}
		s.pulls[key] = f
		go func() {
			defer safego.Recover(s.log, "pull "+name) // f.err says so
			defer close(f.done)
			defer cancel()
			defer s.unshare(f)
			f.err = fmt.Errorf("pull %s: the pull panicked", name)
			f.img, f.err = s.download(pullCtx, name, auth)
		}()
	}
	f.waiters++
	s.pullsMu.Unlock()

	select {
	case <-f.done:
		s.leave(f)
		return f.img, f.err
	case <-ctx.Done():
		s.leave(f)
		return nil, fmt.Errorf("pull %s: %w", name, ctx.Err())
	}
}

// leave drops one waiter and stops the pull when nobody waits any more;
// a stopped pull is no longer shared.
func (s *Service) leave(f *flight) {
	s.pullsMu.Lock()
	defer s.pullsMu.Unlock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
		s.unshareLocked(f)
	}
}

// unshare makes later pulls of f's name start a download of their own.
func (s *Service) unshare(f *flight) {
	s.pullsMu.Lock()
	defer s.pullsMu.Unlock()
	s.unshareLocked(f)
}

func (s *Service) unshareLocked(f *flight) {
	if s.pulls[f.key] == f {
		delete(s.pulls, f.key)
	}
}

// pull resolves name to its candidates (short names through registries.conf)
// and tries each in order until one succeeds.
func (s *Service) pull(ctx context.Context, name string, auth *Auth) (*Image, error) {
	candidates, describe, err := s.pullCandidates(name)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range candidates {
		img, err := s.pullOne(ctx, c, auth)
		if err == nil {
			return img, nil
		}
		s.log.Debug("pull candidate failed", "image", name, "candidate", c.String(), "err", err)
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	// Several registries were tried: report them all, classified by the
	// most telling failure (anything but "not found" there).
	cause := errs[0]
	for _, e := range errs {
		if !errors.Is(e, errdefs.ErrNotFound) {
			cause = e
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", describe(errs), classOf(cause))
}

// pullCandidates lists the fully qualified names to try for name. Short
// names use registries.conf's aliases and unqualified-search registries;
// with none configured, docker.io is searched, as users expect.
func (s *Service) pullCandidates(name string) ([]reference.Named, func([]error) string, error) {
	describe := func(errs []error) string {
		var b strings.Builder
		fmt.Fprintf(&b, "pull %s: every candidate failed:", name)
		for _, e := range errs {
			b.WriteString(" [" + e.Error() + "]")
		}
		return b.String()
	}
	if shortnames.IsShortName(name) {
		regs, err := sysregistriesv2.UnqualifiedSearchRegistries(s.sys)
		if err != nil {
			return nil, nil, fmt.Errorf("read registries.conf: %w", err)
		}
		if len(regs) == 0 {
			named, err := parseName(name)
			if err != nil {
				return nil, nil, err
			}
			return []reference.Named{reference.TagNameOnly(named)}, describe, nil
		}
	}
	resolved, err := shortnames.Resolve(s.sys, name)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	var out []reference.Named
	for _, c := range resolved.PullCandidates {
		out = append(out, c.Value)
	}
	return out, func(errs []error) string { return resolved.FormatPullErrors(errs).Error() }, nil
}

// pullOne copies one fully qualified image into the store.
func (s *Service) pullOne(ctx context.Context, named reference.Named, auth *Auth) (*Image, error) {
	if reg, err := sysregistriesv2.FindRegistry(s.sys, named.Name()); err == nil && reg != nil && reg.Blocked {
		return nil, fmt.Errorf("pull %s: registry %s is blocked by registries.conf: %w", named, reference.Domain(named), errdefs.ErrPermissionDenied)
	}
	policy, err := s.policy()
	if err != nil {
		return nil, err
	}
	defer policy.Destroy() //nolint:errcheck // nothing to do about it

	src, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %v: %w", named, err, errdefs.ErrInvalidArgument)
	}
	dest, err := istorage.Transport.NewStoreReference(s.store, named, "")
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", named, err)
	}
	srcCtx := *s.sys
	if auth != nil {
		if auth.Username != "" || auth.Password != "" || auth.IdentityToken != "" {
			srcCtx.DockerAuthConfig = &types.DockerAuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken}
		}
		srcCtx.DockerBearerRegistryToken = auth.RegistryToken
	}

	// Pulls share the store; a cleanup of unused layers waits for them.
	s.layers.enter()
	_, err = copy.Image(ctx, policy, dest, src, &copy.Options{SourceCtx: &srcCtx, DestinationCtx: s.sys})
	if err != nil {
		err = fmt.Errorf("pull %s: %w", named, classify(err, named))
		// Whatever the failed copy stored is not an image: remove it, so a
		// failed pull leaves nothing behind (at once, or when the pulls in
		// flight end). The retry downloads again.
		s.layers.removeSoon(s.cleanLayers)
		s.layers.leave(s.cleanLayers)
		return nil, err
	}
	s.layers.leave(s.cleanLayers)
	img, err := istorage.Transport.GetStoreImage(s.store, dest)
	if err != nil {
		return nil, fmt.Errorf("pull %s: find the pulled image: %w", named, err)
	}
	s.log.Info("pulled image", "image", named.String(), "id", img.ID)
	return s.describe(ctx, img)
}
