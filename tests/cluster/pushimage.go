package main

// push-image assembles a single-layer linux/amd64 image from local files (no
// base image, like "FROM scratch" + COPY) and pushes it to a plain-HTTP
// registry through the Docker Registry HTTP API v2. No Docker engine needed.
//
//	k8s push-image --registry 127.0.0.1:5000 --image runner-cluster/pause:3.10 \
//	    --add ./pause:/pause --entrypoint /pause
//
// The layer is built deterministically (fixed times and owners), so pushing
// the same files again gives the same digest. It prints the pushed reference
// NAME@sha256:... on stdout.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runPushImage() int {
	fs := flag.NewFlagSet("push-image", flag.ExitOnError)
	registry := fs.String("registry", "127.0.0.1:5000", "registry host:port (plain HTTP)")
	image := fs.String("image", "", "repository:tag inside the registry, e.g. runner-cluster/pause:3.10")
	var adds, links, entrypoint, env stringList
	fs.Var(&adds, "add", "SRC:DEST file to put in the image, mode kept (repeatable)")
	fs.Var(&links, "symlink", "LINK:TARGET symbolic link to put in the image (repeatable)")
	fs.Var(&entrypoint, "entrypoint", "entrypoint argument (repeatable, in order)")
	fs.Var(&env, "env", "KEY=VALUE environment entry (repeatable)")
	_ = fs.Parse(os.Args[1:])
	repo, tag, ok := strings.Cut(*image, ":")
	if !ok || repo == "" || tag == "" || len(adds) == 0 {
		fmt.Fprintln(os.Stderr, "push-image: --image REPO:TAG and at least one --add SRC:DEST are required")
		return 2
	}
	ref, err := pushImage(*registry, repo, tag, adds, links, entrypoint, env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "push-image: %v\n", err)
		return 1
	}
	fmt.Println(ref)
	return 0
}

func pushImage(registry, repo, tag string, adds, links, entrypoint, env []string) (string, error) {
	layer, diffID, err := buildLayer(adds, links)
	if err != nil {
		return "", err
	}
	config, err := json.Marshal(map[string]interface{}{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config":       map[string]interface{}{"Entrypoint": entrypoint, "Env": env, "WorkingDir": "/"},
		"rootfs":       map[string]interface{}{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config": map[string]interface{}{
			"mediaType": "application/vnd.docker.container.image.v1+json",
			"size":      len(config), "digest": digest(config),
		},
		"layers": []map[string]interface{}{{
			"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
			"size":      len(layer), "digest": digest(layer),
		}},
	})
	if err != nil {
		return "", err
	}
	base := "http://" + registry + "/v2/" + repo
	client := &http.Client{Timeout: 60 * time.Second}
	for _, blob := range [][]byte{layer, config} {
		if err := pushBlob(client, base, blob); err != nil {
			return "", err
		}
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	if err := do(client, req, http.StatusCreated); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	return registry + "/" + repo + "@" + digest(manifest), nil
}

// buildLayer returns the gzipped layer tar and the digest of the uncompressed tar.
func buildLayer(adds, links []string) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	// Files first, then links, each group sorted: the same input gives the same tar.
	entries := make([]string, 0, len(adds)+len(links))
	for _, a := range adds {
		entries = append(entries, "f"+a)
	}
	for _, l := range links {
		entries = append(entries, "l"+l)
	}
	sort.Strings(entries)
	// Every image gets a world-writable /tmp, as most programs expect one.
	dirs := map[string]bool{"tmp": true}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: time.Unix(0, 0)}); err != nil {
		return nil, "", err
	}
	for _, e := range entries {
		kind, spec := e[0], e[1:]
		src, dest, ok := strings.Cut(spec, ":")
		if !ok || src == "" || dest == "" {
			return nil, "", fmt.Errorf("%q: want SRC:DEST or LINK:TARGET", spec)
		}
		if kind == 'l' { // src is the link's path, dest its target
			src, dest = dest, src
		}
		dest = strings.TrimPrefix(path.Clean("/"+dest), "/")
		// Parent directories first, each once.
		if dir := path.Dir(dest); dir != "." {
			parts := strings.Split(dir, "/")
			for i := range parts {
				d := strings.Join(parts[:i+1], "/")
				if dirs[d] {
					continue
				}
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
					return nil, "", err
				}
			}
		}
		if kind == 'l' {
			hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: dest, Linkname: src, Mode: 0o777, ModTime: time.Unix(0, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, "", err
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, "", err
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, "", err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dest, Mode: int64(st.Mode().Perm()), Size: int64(len(data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest(raw.Bytes()), nil
}

func pushBlob(client *http.Client, base string, blob []byte) error {
	d := digest(blob)
	if resp, err := client.Head(base + "/blobs/" + d); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil // already there
		}
	}
	resp, err := client.Post(base+"/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("starting upload of %s: %s", d, resp.Status)
	}
	loc, err := url.Parse(base)
	if err != nil {
		return err
	}
	if loc, err = loc.Parse(resp.Header.Get("Location")); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := do(client, req, http.StatusCreated); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	return nil
}

func do(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body)
	}
	return nil
}

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
