//go:build !crashpoints

package crashpoint

// Enabled tells whether this build has the points (the crashpoints tag).
const Enabled = false

// Hit does nothing: this build has no crash points, whatever the
// environment says.
func Hit(string) {}
