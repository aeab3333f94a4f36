// Package harness runs the two brokers every Go client test is checked against: the
// reference Apache Kafka (scripts/kafka-ref.sh, docs/kafka-ref.md) and a Strom started
// like tests/python/conftest.py's StromBroker, both once per test binary (TestMain), both
// with the defaults that matter alike (auto-created topics get 4 partitions, a group's
// first rebalance is not delayed).
//
// It is a module of its own with no dependencies, so that the client modules beside it
// (tests/go with current franz-go and Sarama, tests/go/sarama-old with a Sarama from
// before 1.40) each keep their own dependency versions and share only this.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Broker is one of the two brokers a scenario runs against.
type Broker struct {
	// Name is "kafka" or "strom": the subtest's name, and what a test asks when it
	// expects a named difference between the two.
	Name string
	// Bootstrap is host:port for the client's seed broker list.
	Bootstrap string
	// Missing, when set, says why this broker is not running; its subtests are skipped
	// (or failed under STROM_REQUIRE_KAFKA_REF=1).
	Missing string
}

const (
	// Kafka names the reference broker.
	Kafka = "kafka"
	// Strom names the broker under test.
	Strom = "strom"
)

var (
	kafka = Broker{Name: Kafka}
	strom = Broker{Name: Strom}
)

// Brokers returns the reference Kafka first, then Strom: every expectation is shown to
// be Kafka's before Strom is held to it.
func Brokers() []Broker { return []Broker{kafka, strom} }

// Each runs f as a subtest against each broker, Kafka first.
func Each(t *testing.T, f func(t *testing.T, b Broker)) {
	t.Helper()
	for _, b := range Brokers() {
		t.Run(b.Name, func(t *testing.T) {
			if b.Missing != "" {
				if os.Getenv("STROM_REQUIRE_KAFKA_REF") == "1" {
					t.Fatal(b.Missing)
				}
				t.Skip(b.Missing)
			}
			f(t, b)
		})
	}
}

// Unique returns a topic or group name no other test (or earlier run) uses.
func Unique(kind string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("go.%s.%x", kind, b)
}

// Main starts both brokers, runs the tests and stops the brokers; a Strom that panicked
// or did not exit cleanly fails the run even when every test passed. It does not return.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	work, err := os.MkdirTemp("", "strom-go-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	keep := false
	defer func() {
		if keep {
			fmt.Fprintf(os.Stderr, "harness: logs kept in %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()

	bin, err := stromBin(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	ref := &kafkaRef{script: filepath.Join(root, "scripts", "kafka-ref.sh"), dir: filepath.Join(work, "kafka-ref")}
	if missing := missingTools("java", "mvn"); missing != "" {
		kafka.Missing = "the reference Kafka needs " + missing
	} else if addr, err := ref.start(); err != nil {
		fmt.Fprintln(os.Stderr, "harness: the reference Kafka did not start:", err)
		return 1
	} else {
		kafka.Bootstrap = addr
		defer ref.stop()
	}

	s, err := startStrom(bin, filepath.Join(work, "strom"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		keep = true
		return 1
	}
	strom.Bootstrap = s.bootstrap()
	fmt.Fprintf(os.Stderr, "harness: kafka %s, strom %s (%s)\n", orNone(kafka.Bootstrap, kafka.Missing), strom.Bootstrap, s.bin)

	code := m.Run()
	if err := s.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		code = 1
	}
	if code != 0 {
		keep = true
	}
	return code
}

func orNone(addr, missing string) string {
	if addr == "" {
		return "not running (" + missing + ")"
	}
	return addr
}

func missingTools(names ...string) string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return strings.Join(missing, " and ")
}

// repoRoot walks up from the test's directory to the checkout holding scripts/kafka-ref.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "kafka-ref.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no scripts/kafka-ref.sh above the working directory")
		}
		dir = parent
	}
}

// kafkaRef is the reference broker of scripts/kafka-ref.sh, its state in a directory of
// this run.
type kafkaRef struct {
	script string
	dir    string
}

func (k *kafkaRef) command(arg string) *exec.Cmd {
	cmd := exec.Command(k.script, arg)
	cmd.Env = append(os.Environ(), "KAFKA_REF_DIR="+k.dir)
	return cmd
}

// start runs `kafka-ref.sh start` (the first time it also assembles Kafka with Maven) and
// returns the address it prints last.
func (k *kafkaRef) start() (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := k.command("start")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Fields(strings.TrimSpace(stdout.String()))
	if len(lines) == 0 {
		return "", errors.New("kafka-ref.sh start printed no address")
	}
	return lines[len(lines)-1], nil
}

func (k *kafkaRef) stop() {
	if out, err := k.command("stop").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: kafka-ref.sh stop: %v\n%s", err, out)
	}
}

// stromProc is one `strom serve`, its stderr and stdout in a log file.
type stromProc struct {
	bin  string
	port int
	log  string
	cmd  *exec.Cmd
	done chan error
}

// stromBin is $STROM_BIN, or target/release/strom of the checkout.
func stromBin(root string) (string, error) {
	bin := os.Getenv("STROM_BIN")
	if bin == "" {
		bin = filepath.Join(root, "target", "release", "strom")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("strom binary %s: %v (build it with `cargo build --release -p strom` or set STROM_BIN)", bin, err)
	}
	return bin, nil
}

// startStrom starts $STROM_BIN (default target/release/strom) with the flags conftest.py's
// differential fixture uses, on free ports and a fresh data directory, and waits until it
// answers ApiVersions (a bound port alone is not enough: the listener is bound before the
// data directory is recovered).
func startStrom(bin, dir string) (*stromProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &stromProc{bin: bin, port: port, log: filepath.Join(dir, "strom.stderr"), done: make(chan error, 1)}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "serve",
		"--listen", s.bootstrap(),
		"--data-dir", filepath.Join(dir, "data"),
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--default-partitions", "4",
		"--group-initial-rebalance-delay-ms", "0",
	)
	// Strom reads STROM_* as settings: the test's own (STROM_BIN, STROM_OLD_VERSIONS, ...)
	// must not reach it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STROM_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	logFilter := os.Getenv("STROM_TEST_LOG")
	if logFilter == "" {
		logFilter = "info,strom_broker=debug"
	}
	s.cmd.Env = append(s.cmd.Env, "RUST_BACKTRACE=1", "NO_COLOR=1", "STROM_LOG="+logFilter)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("strom exited while starting (%v):\n%s", err, s.tail())
		default:
		}
		if last = probe(s.bootstrap()); last == nil {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	<-s.done
	return nil, fmt.Errorf("strom did not answer within 30 s (%v):\n%s", last, s.tail())
}

func (s *stromProc) bootstrap() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// stop sends SIGTERM and waits: a non-zero exit, a hang or a panic in the log is an error.
func (s *stromProc) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("strom did not stop within 30 s of SIGTERM (log %s)", s.log)
	}
	if err != nil {
		return fmt.Errorf("strom exited uncleanly: %v (log %s)", err, s.log)
	}
	if log, _ := os.ReadFile(s.log); bytes.Contains(log, []byte("panicked")) {
		return fmt.Errorf("strom panicked (log %s):\n%s", s.log, s.tail())
	}
	return nil
}

func (s *stromProc) tail() string {
	log, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// probe sends one ApiVersions v0 request and succeeds when the answer has no error and
// lists at least one API.
//
//	request:  size int32 | api_key int16 = 18 | api_version int16 = 0 | correlation_id int32 | client_id string
//	response: size int32 | correlation_id int32 | error_code int16 | [api_key, min, max int16] (int32 count)
func probe(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	clientID := "strom-go-harness"
	req := binary.BigEndian.AppendUint16(nil, 18)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint32(req, 1)
	req = binary.BigEndian.AppendUint16(req, uint16(len(clientID)))
	req = append(req, clientID...)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(req)))
	if _, err := conn.Write(append(frame, req...)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 10 || n > 1<<20 {
		return fmt.Errorf("ApiVersions answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	corr, code, apis := binary.BigEndian.Uint32(body), int16(binary.BigEndian.Uint16(body[4:])), binary.BigEndian.Uint32(body[6:])
	if corr != 1 || code != 0 || apis == 0 {
		return fmt.Errorf("ApiVersions answer: correlation %d, error %d, %d APIs", corr, code, apis)
	}
	return nil
}
