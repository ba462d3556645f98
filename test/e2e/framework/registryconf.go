package framework

import (
	"bytes"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
)

// redirectedRegistries are the public registries whose test image names are served by the test
// registry.
var redirectedRegistries = []string{"docker.io", "registry.k8s.io"}

// registriesConf is the subset of containers-registries.conf(5), version 2, the harness writes.
type registriesConf struct {
	UnqualifiedSearchRegistries []string        `toml:"unqualified-search-registries"`
	Registries                  []registryEntry `toml:"registry"`
}

type registryEntry struct {
	Prefix   string `toml:"prefix,omitempty"`
	Location string `toml:"location"`
	Insecure bool   `toml:"insecure"`
}

// WriteRegistriesConf writes a containers-registries.conf(5) file to path that makes docker.io
// and registry.k8s.io resolve to this registry over plain HTTP, and sets
// unqualified-search-registries = ["docker.io"], so "busybox" → docker.io/library/busybox →
// <addr>/library/busybox.
//
// The public registries are redirected by rewriting their location rather than by adding a
// [[registry.mirror]]: containers/image falls back from a failing mirror to the primary location,
// so with a mirror a missing image or a rejected credential would silently turn into a pull from
// the internet. The registry's own address gets an entry too, so that pulling Ref(...) names
// directly works over HTTP.
//
// Each of insecure ("host:port": another test registry's Addr, or an address where nothing
// listens) gets an entry of its own too, so that names on those hosts are pulled over plain HTTP.
func (r *Registry) WriteRegistriesConf(path string, insecure ...string) error {
	return r.writeRegistriesConf(path, redirectedRegistries, insecure)
}

// WriteRegistriesConfRedirecting is WriteRegistriesConf for another set of public registries:
// every host in hosts (e.g. "gcr.io") is rewritten to this registry, the same way, and nothing
// else is. critest's images live on more hosts than the e2e tests' (see CritestRegistries).
func (r *Registry) WriteRegistriesConfRedirecting(path string, hosts []string) error {
	return r.writeRegistriesConf(path, hosts, nil)
}

func (r *Registry) writeRegistriesConf(path string, redirected, insecure []string) error {
	conf := registriesConf{UnqualifiedSearchRegistries: []string{"docker.io"}}
	for _, prefix := range redirected {
		conf.Registries = append(conf.Registries, registryEntry{Prefix: prefix, Location: r.Addr(), Insecure: true})
	}
	conf.Registries = append(conf.Registries, registryEntry{Location: r.Addr(), Insecure: true})
	for _, loc := range insecure {
		conf.Registries = append(conf.Registries, registryEntry{Location: loc, Insecure: true})
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by the cri-runtime e2e framework for the test registry at %s.\n", r.Addr())
	if err := toml.NewEncoder(&b).Encode(conf); err != nil {
		return fmt.Errorf("encode registries.conf: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write registries.conf: %w", err)
	}
	return nil
}
