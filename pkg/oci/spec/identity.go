package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// setUser writes process.user from Identity.
func setUser(g *generate.Generator, in Input) error {
	uid, gid, gids, _, err := Identity(in.Rootfs, in.Image.User, in.Security)
	if err != nil {
		return err
	}
	g.SetProcessUID(uid)
	g.SetProcessGID(gid)
	g.ClearProcessAdditionalGids()
	g.Config.Process.User.AdditionalGids = gids
	return nil
}

// Identity resolves who the container's process runs as.
//
// The user is RunAsUser, else RunAsUsername, else the image USER ("uid",
// "name", "uid:gid", "name:group"), else root. Names are looked up in the
// rootfs' /etc/passwd and /etc/group, resolved inside rootfs so that a
// symlink cannot make the daemon read the host's files; a numeric user needs
// neither file. The gid is RunAsGroup, else the group the image USER names,
// else the user's primary group (0 when the user has no passwd entry).
//
// additionalGids starts with the gid, then, unless sec.SupplementalGroupsStrict,
// the groups that list the user as a member in /etc/group, then
// sec.SupplementalGroups; duplicates are dropped. username is the passwd name
// of the user, "" when it has none.
//
// An unknown user or group name, a negative id, or RunAsGroup without
// RunAsUser/RunAsUsername (api.proto: the runtime must error) wraps
// errdefs.ErrInvalidArgument.
func Identity(rootfs, imageUser string, sec Security) (uid, gid uint32, additionalGids []uint32, username string, err error) {
	userSpec, err := userSpecFor(imageUser, sec)
	if err != nil {
		return 0, 0, nil, "", err
	}
	passwdPath, err := userFile(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, "", err
	}
	groupPath, err := userFile(rootfs, "/etc/group")
	if err != nil {
		return 0, 0, nil, "", err
	}

	// Start from root, so an empty spec means uid 0 with root's passwd entry.
	execUser, err := user.GetExecUserPath(userSpec, &user.ExecUser{}, passwdPath, groupPath)
	if err != nil {
		if errors.Is(err, user.ErrNoPasswdEntries) || errors.Is(err, user.ErrNoGroupEntries) || errors.Is(err, user.ErrRange) || errors.Is(err, bufio.ErrTooLong) {
			return 0, 0, nil, "", fmt.Errorf("user %q: %w: %w", userSpec, err, errdefs.ErrInvalidArgument)
		}
		return 0, 0, nil, "", fmt.Errorf("user %q: %w", userSpec, err)
	}
	uid, gid = uint32(execUser.Uid), uint32(execUser.Gid)
	if sec.RunAsGroup != nil {
		g, err := toID("runAsGroup", *sec.RunAsGroup)
		if err != nil {
			return 0, 0, nil, "", err
		}
		gid = g
	}

	userPart, _, _ := strings.Cut(userSpec, ":")
	username, err = passwdName(passwdPath, userPart, uid)
	if err != nil {
		return 0, 0, nil, "", err
	}

	gids := idSet{}
	gids.add(gid)
	if !sec.SupplementalGroupsStrict && username != "" {
		member, err := memberGroups(groupPath, username)
		if err != nil {
			return 0, 0, nil, "", err
		}
		for _, g := range member {
			gids.add(g)
		}
	}
	for _, g := range sec.SupplementalGroups {
		id, err := toID("supplemental group", g)
		if err != nil {
			return 0, 0, nil, "", err
		}
		gids.add(id)
	}
	return uid, gid, gids.list, username, nil
}

// userFile resolves name inside rootfs, following symlinks without leaving
// it. What it finds must be a regular file (or nothing): an image could
// otherwise make the daemon block on a FIFO or read a device.
func userFile(rootfs, name string) (string, error) {
	path, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return "", fmt.Errorf("resolve %s in rootfs: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return path, nil
	case err != nil:
		return "", fmt.Errorf("%s in rootfs: %w", name, err)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s in rootfs is not a regular file (%s): %w", name, fi.Mode().Type(), errdefs.ErrInvalidArgument)
	}
	return path, nil
}

// userSpecFor picks the "user[:group]" string to resolve.
func userSpecFor(imageUser string, sec Security) (string, error) {
	switch {
	case sec.RunAsUser != nil:
		id, err := toID("runAsUser", *sec.RunAsUser)
		if err != nil {
			return "", err
		}
		return strconv.FormatUint(uint64(id), 10), nil
	case sec.RunAsUsername != "":
		if strings.Contains(sec.RunAsUsername, ":") {
			return "", fmt.Errorf("runAsUsername %q contains ':': %w", sec.RunAsUsername, errdefs.ErrInvalidArgument)
		}
		return sec.RunAsUsername, nil
	case sec.RunAsGroup != nil:
		return "", fmt.Errorf("runAsGroup %d is set without runAsUser or runAsUsername: %w", *sec.RunAsGroup, errdefs.ErrInvalidArgument)
	}
	return imageUser, nil
}

func toID(what string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32-1 {
		return 0, fmt.Errorf("%s %d is out of range: %w", what, v, errdefs.ErrInvalidArgument)
	}
	return uint32(v), nil
}

// passwdName returns the name of the user: userPart itself when it is a
// name, else the first passwd entry with the uid, else "".
func passwdName(passwdPath, userPart string, uid uint32) (string, error) {
	if userPart != "" {
		if _, err := strconv.ParseUint(userPart, 10, 32); err != nil {
			return userPart, nil // a name GetExecUserPath already found
		}
	}
	f, err := openOptional(passwdPath)
	if err != nil || f == nil {
		return "", err
	}
	defer f.Close()
	users, err := user.ParsePasswdFilter(f, func(u user.User) bool { return u.Uid == int(uid) })
	if err != nil {
		return "", imageFileErr("/etc/passwd", err)
	}
	if len(users) == 0 {
		return "", nil
	}
	return users[0].Name, nil
}

// memberGroups returns the gids of the /etc/group entries listing username.
func memberGroups(groupPath, username string) ([]uint32, error) {
	f, err := openOptional(groupPath)
	if err != nil || f == nil {
		return nil, err
	}
	defer f.Close()
	groups, err := user.ParseGroupFilter(f, func(g user.Group) bool {
		for _, m := range g.List {
			if m == username {
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, imageFileErr("/etc/group", err)
	}
	out := make([]uint32, 0, len(groups))
	for _, g := range groups {
		if g.Gid >= 0 {
			out = append(out, uint32(g.Gid))
		}
	}
	return out, nil
}

// openOptional opens a file that images may lack: nil, nil when it does not
// exist.
func openOptional(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// idSet is an insertion-ordered set of ids.
type idSet struct {
	seen map[uint32]bool
	list []uint32
}

func (s *idSet) add(id uint32) {
	if s.seen == nil {
		s.seen = map[uint32]bool{}
	}
	if !s.seen[id] {
		s.seen[id] = true
		s.list = append(s.list, id)
	}
}

// imageFileErr explains a failure to read the image's passwd or group
// file; a line too long to parse is the image's fault (InvalidArgument).
func imageFileErr(name string, err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("the image's %s has a line too long to parse: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("read %s: %w", name, err)
}
