// Package docker_test checks the deployment files without a container
// engine: the compose files parse, build with docker/Dockerfile, mount files
// that exist, and run offtrail commands that the real CLI accepts; the
// configuration they ship (and the Kubernetes and systemd ones) passes
// offtrail's own validation with the rules they point at.
package docker_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offtrail/offtrail/internal/config"
	"github.com/offtrail/offtrail/rules"
)

var composeFiles = []string{"compose.elastic.yml", "compose.opensearch.yml"}

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *build            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func readCompose(t *testing.T, name string) compose {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// dockerfile is what the tests need of docker/Dockerfile.
type dockerfile struct {
	stages      []string          // FROM images
	copies      map[string]string // container path -> repository path (COPY from the context)
	user        string
	expose      []string
	healthcheck string
	entrypoint  string
	cmd         string
	body        string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{copies: map[string]string{}, body: string(b)}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			df.stages = append(df.stages, rest)
		case "COPY":
			args := strings.Fields(rest)
			if strings.HasPrefix(args[0], "--from") {
				continue
			}
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				args = args[1:]
			}
			for _, src := range args[:len(args)-1] {
				df.copies[args[len(args)-1]] = src
			}
		case "USER":
			df.user = rest
		case "EXPOSE":
			df.expose = append(df.expose, strings.Fields(rest)...)
		case "HEALTHCHECK":
			df.healthcheck = rest
		case "ENTRYPOINT":
			df.entrypoint = rest
		case "CMD":
			df.cmd = rest
		}
	}
	return df
}

func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)
	if len(df.stages) != 2 || !strings.HasPrefix(df.stages[0], "golang:1.26 ") || !strings.HasPrefix(df.stages[1], "gcr.io/distroless/static") {
		t.Errorf("stages %q: want golang:1.26 builder and a distroless static image", df.stages)
	}
	if !strings.Contains(df.body, "CGO_ENABLED=0 go build") {
		t.Error("the binary is not built static (CGO_ENABLED=0)")
	}
	if df.user == "" || df.user == "root" || strings.HasPrefix(df.user, "0") {
		t.Errorf("USER %q: want a non-root user", df.user)
	}
	if !strings.Contains(df.healthcheck, `"/usr/local/bin/offtrail", "healthcheck"`) {
		t.Errorf("HEALTHCHECK %q does not run offtrail healthcheck", df.healthcheck)
	}
	if !slices.Contains(df.expose, "9464") || !strings.Contains(df.healthcheck, "127.0.0.1:9464/healthz") {
		t.Errorf("EXPOSE %v / HEALTHCHECK %q: want 9464", df.expose, df.healthcheck)
	}
	if df.copies["/etc/offtrail/rules"] != "rules/aws" {
		t.Errorf("the rule pack is not copied to /etc/offtrail/rules: %v", df.copies)
	}
	for dst, src := range df.copies {
		if _, err := os.Stat(filepath.Join("..", src)); err != nil {
			t.Errorf("COPY %s %s: %v", src, dst, err)
		}
	}
	// The image's own configuration must work as it is.
	cfg := loadConfig(t, "offtrail.yml", nil)
	checkRules(t, cfg, df.copies)
	if port(t, cfg.Listen) != "9464" || !strings.HasPrefix(cfg.Listen, "0.0.0.0:") {
		t.Errorf("listen %s: inside a container it must bind all interfaces on 9464", cfg.Listen)
	}
	if !strings.Contains(df.cmd, `"--config", "/etc/offtrail/offtrail.yml"`) || df.copies["/etc/offtrail/offtrail.yml"] != "docker/offtrail.yml" {
		t.Errorf("CMD %s does not run the shipped configuration", df.cmd)
	}
}

func TestComposeFiles(t *testing.T) {
	bin := buildOfftrail(t)
	df := readDockerfile(t)
	for _, name := range composeFiles {
		t.Run(name, func(t *testing.T) {
			c := readCompose(t, name)
			for _, want := range []string{"offtrail", "demo-generate", "demo-load", "demo-backtest", "dashboards"} {
				if _, ok := c.Services[want]; !ok {
					t.Errorf("no service %s", want)
				}
			}
			for sname, s := range c.Services {
				if s.Build != nil {
					if s.Build.Dockerfile != "docker/Dockerfile" {
						t.Errorf("%s builds with %q, want docker/Dockerfile", sname, s.Build.Dockerfile)
					}
					if ctx, _ := filepath.Abs(s.Build.Context); ctx != repoRoot(t) {
						t.Errorf("%s: build context %s is not the repository root", sname, s.Build.Context)
					}
				}
				mounts := map[string]string{}
				for k, v := range df.copies {
					mounts[k] = v
				}
				for _, v := range s.Volumes {
					parts := strings.Split(v, ":")
					src := parts[0]
					if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
						if _, err := os.Stat(src); err != nil {
							t.Errorf("%s mounts %s: %v", sname, src, err)
						}
						rel, _ := filepath.Rel(repoRoot(t), mustAbs(t, src))
						mounts[parts[1]] = rel
					} else if _, ok := c.Volumes[src]; !ok {
						t.Errorf("%s uses undeclared volume %s", sname, src)
					}
				}
				for dep := range s.DependsOn {
					if _, ok := c.Services[dep]; !ok {
						t.Errorf("%s depends on missing service %s", sname, dep)
					}
				}
				if s.Image != "offtrail:local" {
					continue
				}
				if s.Build == nil {
					t.Errorf("%s runs offtrail:local without building it", sname)
				}
				if sname == "offtrail" {
					cfgPath := s.Command[slices.Index(s.Command, "--config")+1]
					cfg := loadConfig(t, filepath.Join("..", mounts[cfgPath]), s.Environment)
					checkRules(t, cfg, mounts)
				}
				checkCommand(t, bin, sname, s.Command)
			}
		})
	}
}

// checkCommand runs a compose job's command line with the real binary,
// with hosts made unreachable and long values shortened, to show that the
// command and every flag exist (usage errors exit 2 in offtrail).
func checkCommand(t *testing.T, bin, name string, args []string) {
	t.Helper()
	args = slices.Clone(args)
	hostURL := regexp.MustCompile(`^http://[a-z-]+:\d+`)
	for i, a := range args {
		switch {
		case hostURL.MatchString(a):
			args[i] = hostURL.ReplaceAllString(a, "http://127.0.0.1:1")
		case i > 0 && args[i-1] == "--wait":
			args[i] = "0s"
		case i > 0 && args[i-1] == "--out":
			args[i] = t.TempDir()
		case i > 0 && args[i-1] == "--days":
			args[i] = "1"
		case i > 0 && args[i-1] == "--config":
			// Mounted from docker/offtrail.yml; unreachable store.
			args[i] = "offtrail.yml"
		case strings.HasPrefix(a, "/var/lib/offtrail/"):
			args[i] = t.TempDir()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "OFFTRAIL_STORE_URL=http://127.0.0.1:1", "OFFTRAIL_LOG_LEVEL=error")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if code == 2 || bytes.Contains(out, []byte("flag provided but not defined")) || bytes.Contains(out, []byte("unknown command")) {
		t.Errorf("%s: offtrail %s: usage error (exit %d):\n%s", name, strings.Join(args, " "), code, out)
	}
}

func TestKubernetes(t *testing.T) {
	b, err := os.ReadFile("kubernetes/offtrail.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs[d["kind"].(string)] = d
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		if docs[kind] == nil {
			t.Fatalf("no %s", kind)
		}
	}
	var dep struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Containers []struct {
						Args  []string `yaml:"args"`
						Ports []struct {
							Name          string `yaml:"name"`
							ContainerPort int    `yaml:"containerPort"`
						} `yaml:"ports"`
						Env []struct {
							Name      string `yaml:"name"`
							ValueFrom struct {
								SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
						LivenessProbe  probe `yaml:"livenessProbe"`
						ReadinessProbe probe `yaml:"readinessProbe"`
						VolumeMounts   []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name      string `yaml:"name"`
						ConfigMap struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
						Secret struct {
							SecretName string `yaml:"secretName"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	remarshal(t, docs["Deployment"], &dep)
	if dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2 (they share the rules through leases)", dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v: want /healthz and /readyz", c.LivenessProbe, c.ReadinessProbe)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != c.LivenessProbe.HTTPGet.Port {
		t.Errorf("ports %+v do not carry the probes", c.Ports)
	}
	secretEnv := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom.SecretKeyRef.Name == "offtrail-credentials" {
			secretEnv[e.Name] = true
		}
	}
	if !secretEnv["OFFTRAIL_USERNAME"] || !secretEnv["OFFTRAIL_PASSWORD"] {
		t.Errorf("credentials do not come from the Secret: %+v", c.Env)
	}
	// Mounts: container path -> what the volume holds.
	volumeSource := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		volumeSource[v.Name] = v.ConfigMap.Name + v.Secret.SecretName
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = volumeSource[m.Name]
	}
	if mounts["/etc/offtrail/rules"] != "offtrail-rules" || mounts["/etc/offtrail/config"] != "offtrail-config" || mounts["/etc/offtrail/tls"] != "offtrail-credentials" {
		t.Errorf("mounts %v: want rules and config ConfigMaps and the credentials Secret", mounts)
	}

	// The ConfigMap's configuration, as the pod sees it.
	cm := docs["ConfigMap"]["data"].(map[string]any)["offtrail.yml"].(string)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "offtrail.yml"), []byte(cm), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := c.Args[slices.Index(c.Args, "--config")+1]
	if filepath.Dir(cfgPath) != "/etc/offtrail/config" || filepath.Base(cfgPath) != "offtrail.yml" {
		t.Errorf("--config %s is not the ConfigMap's file", cfgPath)
	}
	cfg := loadConfig(t, filepath.Join(dir, "offtrail.yml"), map[string]string{"OFFTRAIL_USERNAME": "offtrail", "OFFTRAIL_PASSWORD": "x"})
	if port(t, cfg.Listen) != "9464" || c.Ports[0].ContainerPort != 9464 {
		t.Errorf("listen %s vs containerPort %d", cfg.Listen, c.Ports[0].ContainerPort)
	}
	if !strings.HasPrefix(cfg.Store.CACert, "/etc/offtrail/tls/") {
		t.Errorf("ca_cert %s is not in the Secret's mount", cfg.Store.CACert)
	}
	// `kubectl create configmap offtrail-rules --from-file=rules/aws/`.
	checkRules(t, cfg, map[string]string{"/etc/offtrail/rules": "rules/aws"})
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/offtrail.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	if got := keys["ExecStart"]; len(got) != 1 || got[0] != "/usr/local/bin/offtrail run --config /etc/offtrail/offtrail.yml" {
		t.Errorf("ExecStart %q", got)
	}
	for _, k := range []string{"ExecReload", "EnvironmentFile", "DynamicUser", "NoNewPrivileges", "ProtectSystem"} {
		if len(keys[k]) == 0 {
			t.Errorf("no %s", k)
		}
	}
	cfg := loadConfig(t, "systemd/offtrail.yml", map[string]string{"OFFTRAIL_PASSWORD": "x"})
	checkRules(t, cfg, map[string]string{"/etc/offtrail/rules": "rules/aws"})
}

// loadConfig runs offtrail's own configuration loader with env as the
// only environment.
func loadConfig(t *testing.T, path string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("offtrail rejects %s: %v", path, err)
	}
	return cfg
}

// checkRules loads the rules the configuration names, found in the
// repository through mounts (container path -> repository path).
func checkRules(t *testing.T, cfg *config.Config, mounts map[string]string) {
	t.Helper()
	if len(cfg.Rules) == 0 {
		return // the embedded pack
	}
	var paths []string
	for _, p := range cfg.Rules {
		src, ok := mounts[p]
		if !ok {
			t.Errorf("rules path %s is not in the image or mounted", p)
			continue
		}
		paths = append(paths, filepath.Join(repoRoot(t), src))
	}
	pack, diags := rules.LoadFiles(paths...)
	if diags.HasErrors() {
		t.Errorf("rules %v: %v", cfg.Rules, diags.Error())
	} else if len(pack.Enabled()) == 0 {
		t.Errorf("rules %v: no enabled rule", cfg.Rules)
	}
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func repoRoot(t *testing.T) string { return mustAbs(t, "..") }

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// buildOfftrail compiles the binary the image would contain.
func buildOfftrail(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "offtrail")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/offtrail")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/offtrail: %v\n%s", err, out)
	}
	return bin
}
