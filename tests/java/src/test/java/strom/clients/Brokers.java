//! Both brokers, started once per test run and stopped when the run ends.
package strom.clients;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.params.provider.Arguments;

/**
 * The reference Kafka and a Strom, each started on first use and kept for the whole run
 * (starting Kafka takes ~8 s). The extension puts a resource into JUnit's root store whose
 * `close` stops them at the end of the run; a failure there (Strom panicked or did not
 * exit cleanly) fails the run.
 *
 * Every test is run on Kafka first, then on Strom: an expectation is shown to be Kafka's
 * before Strom is held to it.
 */
public final class Brokers implements BeforeAllCallback {
  private static KafkaRef kafka;
  private static StromProcess strom;
  private static List<Broker> both;

  /** Kafka, then Strom. */
  public static synchronized List<Broker> both() {
    if (both == null) {
      try {
        Path repo = Path.of(System.getProperty("strom.repo", "../..")).toAbsolutePath().normalize();
        // Both brokers' state and logs, kept after the run for a look at a failure; the
        // next run starts it afresh (mvn clean removes it).
        Path work = Path.of(System.getProperty("strom.work", "target/brokers")).toAbsolutePath();
        deleteTree(work);
        Files.createDirectories(work);
        kafka = KafkaRef.start(repo, work.resolve("kafka-ref"));
        String bin = System.getenv("STROM_BIN");
        Path binary =
            bin == null || bin.isEmpty() ? repo.resolve("target/release/strom") : Path.of(bin);
        strom = StromProcess.start(binary.toAbsolutePath(), work.resolve("strom"));
        both = List.of(new Broker("kafka", kafka.bootstrap()), new Broker("strom", strom.bootstrap()));
      } catch (Exception e) {
        stopAll();
        throw new IllegalStateException("could not start the brokers: " + e.getMessage(), e);
      }
    }
    return both;
  }

  private static void deleteTree(Path dir) throws java.io.IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** Arguments for a @MethodSource: every broker. */
  public static Stream<Broker> all() {
    return both().stream();
  }

  /** Arguments for a @MethodSource: every broker with every one of `values`. */
  public static Stream<Arguments> cross(Object... values) {
    return both().stream().flatMap(b -> Stream.of(values).map(v -> Arguments.of(b, v)));
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    context
        .getRoot()
        .getStore(ExtensionContext.Namespace.GLOBAL)
        .getOrComputeIfAbsent(Brokers.class, k -> new Stopper(), Stopper.class);
  }

  private static synchronized void stopAll() {
    Throwable failure = null;
    if (kafka != null) {
      try {
        kafka.stop();
      } catch (Exception e) {
        failure = e;
      }
      kafka = null;
    }
    if (strom != null) {
      try {
        strom.stop();
      } catch (Exception | AssertionError e) {
        failure = e;
      }
      strom = null;
    }
    both = null;
    if (failure != null) {
      throw new IllegalStateException("stopping the brokers: " + failure.getMessage(), failure);
    }
  }

  /** Closed by JUnit when the run ends. */
  @SuppressWarnings("deprecation") // CloseableResource for JUnit before 5.13, AutoCloseable after
  private static final class Stopper implements ExtensionContext.Store.CloseableResource, AutoCloseable {
    Stopper() {
      // Whatever happens to JUnit, a killed or crashed run leaves no broker behind.
      Runtime.getRuntime().addShutdownHook(new Thread(Brokers::stopAll));
    }

    @Override
    public void close() {
      stopAll();
    }
  }
}
