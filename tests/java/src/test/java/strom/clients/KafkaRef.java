//! The reference Apache Kafka of scripts/kafka-ref.sh, started and stopped through the script.
package strom.clients;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * One KRaft Kafka 4.4 node, a new empty cluster each time, with its state in its own
 * directory (KAFKA_REF_DIR) so that it never meets another run's reference broker.
 */
final class KafkaRef {
  private final Path script;
  private final Path dir;
  private final String bootstrap;

  private KafkaRef(Path script, Path dir, String bootstrap) {
    this.script = script;
    this.dir = dir;
    this.bootstrap = bootstrap;
  }

  static KafkaRef start(Path repo, Path dir) throws IOException, InterruptedException {
    Path script = repo.resolve("scripts/kafka-ref.sh");
    Files.createDirectories(dir);
    Path out = dir.resolve("start.out");
    Process p = run(script, dir, out, "start");
    // The first run assembles Kafka from Maven Central; later runs take ~8 s.
    if (!p.waitFor(600, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("kafka-ref.sh start did not finish in 10 min: " + out);
    }
    String text = Files.readString(out, StandardCharsets.UTF_8);
    if (p.exitValue() != 0) {
      throw new IllegalStateException(
          "the reference Kafka did not start:\n" + text + Files.readString(dir.resolve("start.err")));
    }
    String[] lines = text.strip().split("\n");
    return new KafkaRef(script, dir, lines[lines.length - 1].strip());
  }

  String bootstrap() {
    return bootstrap;
  }

  void stop() throws IOException, InterruptedException {
    Process p = run(script, dir, dir.resolve("stop.out"), "stop");
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("kafka-ref.sh stop did not finish in 2 min");
    }
  }

  private static Process run(Path script, Path dir, Path out, String command) throws IOException {
    // stdout alone: its last line is the address; the script's progress goes to stderr.
    ProcessBuilder pb = new ProcessBuilder(script.toString(), command);
    pb.redirectOutput(out.toFile());
    pb.redirectError(dir.resolve(command + ".err").toFile());
    pb.environment().put("KAFKA_REF_DIR", dir.toString());
    return pb.start();
  }
}
