package cri

// notYet lists the RPCs this runtime does not serve yet; each would answer
// Unimplemented (errdefs.ErrUnimplemented). TestEveryRPCIsServedOrListed
// keeps this list and the code in step. Every RPC of cri-api v0.37 is
// served now; a method a newer cri-api adds is a compile error first
// (runtimeService embeds the Unsafe interface), then lands here or served.
var notYet = map[string]bool{}
