//! A `strom serve` process on free ports with a fresh data directory, as tests/python/conftest.py starts it.
package strom.clients;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Strom with the reference broker's defaults: auto-created topics get 4 partitions, a
 * group's first rebalance is not delayed. Its stdout and stderr go to `strom.stderr` in
 * its directory; `stop` fails when the process panicked or did not exit cleanly.
 */
final class StromProcess {
  private static final long START_TIMEOUT_MS = 30_000;
  private static final long STOP_TIMEOUT_MS = 30_000;

  private final Path dir;
  private final Path log;
  private final int port;
  private final Process process;

  private StromProcess(Path dir, Path log, int port, Process process) {
    this.dir = dir;
    this.log = log;
    this.port = port;
    this.process = process;
  }

  static StromProcess start(Path binary, Path dir) throws IOException, InterruptedException {
    StromProcess strom = spawn(binary, dir, freePort(), List.of());
    strom.waitReady();
    return strom;
  }

  /**
   * A cluster of `size` nodes (ids 1..size) on free ports, each in `dir/node-N`; returns
   * once every node answers.
   */
  static List<StromProcess> startCluster(Path binary, Path dir, int size)
      throws IOException, InterruptedException {
    List<Integer> ports = new java.util.ArrayList<>();
    List<Integer> peerPorts = new java.util.ArrayList<>();
    StringBuilder peers = new StringBuilder();
    for (int i = 1; i <= size; i++) {
      ports.add(freePort());
      peerPorts.add(freePort());
      peers.append(i == 1 ? "" : ",").append(i).append("=127.0.0.1:").append(peerPorts.get(i - 1));
    }
    List<StromProcess> nodes = new java.util.ArrayList<>();
    try {
      for (int i = 1; i <= size; i++) {
        nodes.add(
            spawn(
                binary,
                dir.resolve("node-" + i),
                ports.get(i - 1),
                List.of(
                    "--node-id", String.valueOf(i),
                    "--peer-listen", "127.0.0.1:" + peerPorts.get(i - 1),
                    "--peers", peers.toString())));
      }
      for (StromProcess n : nodes) {
        n.waitReady();
      }
    } catch (IOException | InterruptedException | RuntimeException e) {
      for (StromProcess n : nodes) {
        n.process.destroyForcibly();
      }
      throw e;
    }
    return nodes;
  }

  private static StromProcess spawn(Path binary, Path dir, int port, List<String> extra)
      throws IOException {
    if (!Files.isExecutable(binary)) {
      throw new IllegalStateException(
          binary + " is missing: build it (cargo build --release -p strom) or set STROM_BIN");
    }
    Files.createDirectories(dir);
    int metricsPort = freePort();
    Path log = dir.resolve("strom.stderr");
    List<String> command = new java.util.ArrayList<>(
        List.of(
            binary.toString(),
            "serve",
            "--listen",
            "127.0.0.1:" + port,
            "--data-dir",
            dir.resolve("data").toString(),
            "--metrics-listen",
            "127.0.0.1:" + metricsPort,
            "--default-partitions",
            "4",
            "--group-initial-rebalance-delay-ms",
            "0"));
    command.addAll(extra);
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    // The broker's settings come from the flags alone, not from a developer's STROM_* variables;
    // STROM_TEST_LOG (as for tests/go) is the log filter, e.g. "info,strom_broker=debug".
    String logFilter = System.getenv().getOrDefault("STROM_TEST_LOG", "info");
    pb.environment().keySet().removeIf(k -> k.startsWith("STROM_"));
    pb.environment().put("STROM_LOG", logFilter.isEmpty() ? "info" : logFilter);
    pb.environment().put("NO_COLOR", "1");
    pb.environment().putIfAbsent("RUST_BACKTRACE", "1");
    return new StromProcess(dir, log, port, pb.start());
  }

  String bootstrap() {
    return "127.0.0.1:" + port;
  }

  /** SIGTERM, then checks the exit code and the log. */
  void stop() throws IOException, InterruptedException {
    if (process.isAlive()) {
      process.destroy(); // SIGTERM: Strom's graceful shutdown
      if (!process.waitFor(STOP_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor();
        throw new AssertionError("strom did not stop within 30 s of SIGTERM; log: " + log);
      }
    }
    String text = Files.readString(log, StandardCharsets.UTF_8);
    if (text.contains("panicked")) {
      throw new AssertionError("strom panicked; log: " + log + "\n" + tail(text));
    }
    if (process.exitValue() != 0) {
      throw new AssertionError(
          "strom exited with " + process.exitValue() + " after SIGTERM; log: " + log);
    }
  }

  /**
   * Polls with an ApiVersions v0 request until the broker answers: a bound port alone is
   * not enough, the listener is bound before the data directory is recovered.
   */
  private void waitReady() throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + START_TIMEOUT_MS;
    IOException last = null;
    while (System.currentTimeMillis() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            "strom exited with " + process.exitValue() + " while starting:\n"
                + tail(Files.readString(log)));
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
        s.setSoTimeout(2000);
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        // size, api_key 18 (ApiVersions), version 0, correlation id 1, client id null
        out.writeInt(10);
        out.writeShort(18);
        out.writeShort(0);
        out.writeInt(1);
        out.writeShort(-1);
        out.flush();
        DataInputStream in = new DataInputStream(s.getInputStream());
        int size = in.readInt();
        int correlation = in.readInt();
        short error = in.readShort();
        if (size > 6 && correlation == 1 && error == 0) {
          return;
        }
      } catch (IOException e) {
        last = e;
      }
      Thread.sleep(50);
    }
    throw new IllegalStateException("strom did not answer within 30 s (" + last + ") in " + dir);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static String tail(String text) {
    String[] lines = text.split("\n");
    int from = Math.max(0, lines.length - 60);
    return String.join("\n", java.util.Arrays.copyOfRange(lines, from, lines.length));
  }
}
