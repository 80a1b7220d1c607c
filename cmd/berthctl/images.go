package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/term"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "pull", usage: "[-creds USER[:PASSWORD]] [-auth BASE64] [-registry-token TOKEN] IMAGE", summary: "pull an image, showing progress", run: runPull})
	register(&command{name: "images", usage: "[-q] [-digests] [IMAGE]", summary: "list images", run: runImages})
	register(&command{name: "inspecti", usage: "IMAGE...", summary: "show image status, verbose (config and history)", run: runInspecti})
	register(&command{name: "rmi", usage: "[-a] IMAGE...", summary: "remove images (by ID, name or digest); -a removes all", run: runRmi})
	register(&command{name: "imagefsinfo", summary: "show the disk use of images and container filesystems", run: runImageFsInfo})
}

func runPull(c *cli, args []string) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	creds := fs.String("creds", "", "registry credentials USER[:PASSWORD] (password asked for when left out)")
	auth := fs.String("auth", "", "registry credentials as base64(USER:PASSWORD), as in a docker config.json")
	token := fs.String("registry-token", "", "bearer token sent to the registry as is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one image reference")
	}
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: fs.Arg(0)}}
	if *creds != "" || *auth != "" || *token != "" {
		a := &runtimeapi.AuthConfig{Auth: *auth, RegistryToken: *token}
		if *creds != "" {
			user, pass, ok := strings.Cut(*creds, ":")
			if !ok {
				p, err := readPassword(user)
				if err != nil {
					return err
				}
				pass = p
			}
			a.Username, a.Password = user, pass
		}
		req.Auth = a
	}
	ctx, cancel := c.ctx()
	defer cancel()
	start := time.Now()
	// PullImage is one unary call with no progress messages, so progress
	// is what the client can see: time spent and, from ImageFsInfo, how
	// much the image store has grown.
	stop := showPullProgress(ctx, c, fs.Arg(0), start)
	resp, err := c.img.PullImage(ctx, req)
	stop()
	if err != nil {
		return err
	}
	if c.output != "table" {
		return c.print(resp, nil, nil)
	}
	fmt.Printf("Image is up to date for %s (%s)\n", resp.ImageRef, time.Since(start).Round(time.Millisecond))
	return nil
}

func readPassword(user string) (string, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", fmt.Errorf("-creds %s has no password and stdin is not a terminal to ask for one", user)
	}
	fmt.Fprintf(os.Stderr, "Password for %s: ", user)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

// showPullProgress redraws one status line on a terminal's stderr until
// the returned stop is called. Off a terminal it prints nothing, so
// scripts get clean output.
func showPullProgress(ctx context.Context, c *cli, image string, start time.Time) (stop func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return func() {}
	}
	base := imageStoreBytes(ctx, c)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		spin := `|/-\`
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		grown := ""
		for i := 0; ; i++ {
			if i%8 == 0 && base >= 0 { // ImageFsInfo is cached server-side; no need to ask often
				if now := imageStoreBytes(ctx, c); now >= base {
					grown = ", store +" + units.HumanSize(float64(now-base))
				}
			}
			fmt.Fprintf(os.Stderr, "\r%c pulling %s: %s%s\033[K", spin[i%len(spin)], image, time.Since(start).Round(time.Second), grown)
			select {
			case <-done:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// imageStoreBytes is the image filesystem's used bytes, -1 if unknown.
func imageStoreBytes(ctx context.Context, c *cli) int64 {
	resp, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(resp.ImageFilesystems) == 0 {
		return -1
	}
	return int64(resp.ImageFilesystems[0].GetUsedBytes().GetValue())
}

func runImages(c *cli, args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "print image IDs only")
	digests := fs.Bool("digests", false, "show repo digests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("want at most one image to filter by")
	}
	req := &runtimeapi.ListImagesRequest{}
	if fs.NArg() == 1 {
		req.Filter = &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: fs.Arg(0)}}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.img.ListImages(ctx, req)
	if err != nil {
		return err
	}
	imgs := resp.Images
	sort.Slice(imgs, func(i, j int) bool { return firstName(imgs[i]) < firstName(imgs[j]) })
	if *quiet {
		for _, img := range imgs {
			fmt.Println(img.Id)
		}
		return nil
	}
	headers := []string{"IMAGE", "TAG", "IMAGE ID", "SIZE"}
	if *digests {
		headers = []string{"IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"}
	}
	var rows [][]string
	for _, img := range imgs {
		id := truncID(strings.TrimPrefix(img.Id, "sha256:"))
		size := units.HumanSize(float64(img.Size))
		digest := "<none>"
		if len(img.RepoDigests) > 0 {
			_, d, _ := strings.Cut(img.RepoDigests[0], "@")
			digest = truncID(strings.TrimPrefix(d, "sha256:"))
		}
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			repo, tag := splitTag(t)
			if *digests {
				rows = append(rows, []string{repo, tag, digest, id, size})
			} else {
				rows = append(rows, []string{repo, tag, id, size})
			}
		}
	}
	return c.print(resp, headers, rows)
}

func firstName(img *runtimeapi.Image) string {
	if len(img.RepoTags) > 0 {
		return img.RepoTags[0]
	}
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.Id
}

// splitTag splits repo:tag at the last colon after the last slash (a
// registry port is not a tag).
func splitTag(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return ref, "<none>"
	}
	return ref[:i], ref[i+1:]
}

func runInspecti(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one image")
	}
	for _, ref := range args {
		ctx, cancel := c.ctx()
		resp, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Verbose: true})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		if resp.Image == nil {
			return fmt.Errorf("%s: no such image", ref)
		}
		if c.output != "table" {
			if err := c.print(resp, nil, nil); err != nil {
				return err
			}
			continue
		}
		img := resp.Image
		user := img.Username
		if img.Uid != nil {
			user = fmt.Sprint(img.Uid.Value)
		}
		rows := [][]string{
			{"ID", img.Id},
			{"Tags", strings.Join(img.RepoTags, ", ")},
			{"Digests", strings.Join(img.RepoDigests, ", ")},
			{"Size", units.HumanSize(float64(img.Size))},
			{"User", user},
			{"Pinned", fmt.Sprint(img.Pinned)},
		}
		var info struct {
			ImageSpec struct {
				Architecture string `json:"architecture"`
				OS           string `json:"os"`
				Config       struct {
					Entrypoint []string `json:"Entrypoint"`
					Cmd        []string `json:"Cmd"`
					Env        []string `json:"Env"`
					WorkingDir string   `json:"WorkingDir"`
					StopSignal string   `json:"StopSignal"`
				} `json:"config"`
				History []struct {
					CreatedBy string `json:"created_by"`
				} `json:"history"`
			} `json:"imageSpec"`
		}
		if json.Unmarshal([]byte(resp.Info["info"]), &info) == nil {
			spec := info.ImageSpec
			rows = append(rows,
				[]string{"Platform", spec.OS + "/" + spec.Architecture},
				[]string{"Entrypoint", strings.Join(spec.Config.Entrypoint, " ")},
				[]string{"Cmd", strings.Join(spec.Config.Cmd, " ")},
				[]string{"WorkingDir", spec.Config.WorkingDir},
				[]string{"StopSignal", spec.Config.StopSignal},
			)
			for _, e := range spec.Config.Env {
				rows = append(rows, []string{"Env", e})
			}
			for _, h := range spec.History {
				rows = append(rows, []string{"History", h.CreatedBy})
			}
		}
		if err := c.print(resp, []string{"FIELD", "VALUE"}, rows); err != nil {
			return err
		}
	}
	return nil
}

func runRmi(c *cli, args []string) error {
	fs := flag.NewFlagSet("rmi", flag.ContinueOnError)
	all := fs.Bool("a", false, "remove every image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	refs := fs.Args()
	if *all {
		ctx, cancel := c.ctx()
		resp, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		cancel()
		if err != nil {
			return err
		}
		for _, img := range resp.Images {
			refs = append(refs, img.Id)
		}
	} else if len(refs) == 0 {
		return fmt.Errorf("want at least one image, or -a")
	}
	var failed int
	for _, ref := range refs {
		ctx, cancel := c.ctx()
		_, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "berthctl rmi: %s: %v\n", ref, err)
			failed++
			continue
		}
		fmt.Printf("Deleted: %s\n", ref)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images not removed", failed, len(refs))
	}
	return nil
}

func runImageFsInfo(c *cli, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("takes no arguments")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return err
	}
	var rows [][]string
	add := func(kind string, fss []*runtimeapi.FilesystemUsage) {
		for _, f := range fss {
			rows = append(rows, []string{kind, f.GetFsId().GetMountpoint(),
				units.HumanSize(float64(f.GetUsedBytes().GetValue())), fmt.Sprint(f.GetInodesUsed().GetValue()),
				time.Unix(0, f.Timestamp).Format(time.RFC3339)})
		}
	}
	add("image", resp.ImageFilesystems)
	add("container", resp.ContainerFilesystems)
	return c.print(resp, []string{"FILESYSTEM", "MOUNTPOINT", "USED", "INODES", "MEASURED"}, rows)
}
