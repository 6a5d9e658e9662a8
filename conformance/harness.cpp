// The conformance harness: expectations, per-test result records, and main().
//
// Each test normally runs in its own process (ctest, one gtest filter each), so
// a crash or hang costs one cell of the matrix, not the leg. For every test the
// harness writes <results>/<id>.json: a placeholder "crashed" record when the
// test starts, replaced by the real outcome when it ends. The process exits 0
// exactly when every test it ran matched its expectation for this leg
// (conformance/expectations/<leg>.txt): PASS unless listed as SKIP or XFAIL,
// and an unexpected pass or skip fails like an unexpected failure.
#include "conformance/harness.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace keel::conformance {

struct ExpectationFile { const char* name; const char* text; };
extern const char* const kLeg;
extern const ExpectationFile kExpectationFiles[];

int64_t timeout_multiplier() {
  static const int64_t m = [] {
    const char* s = std::getenv("KEEL_TEST_TIMEOUT_MULTIPLIER");
    long long v = s != nullptr ? std::atoll(s) : 1;
    return int64_t(v >= 1 ? v : 1);
  }();
  return m;
}

void record_metric(const std::string& name, double value, const std::string& unit) {
  std::ostringstream v;
  v << std::setprecision(4) << value;
  if (!unit.empty()) v << ' ' << unit;
  ::testing::Test::RecordProperty("metric." + name, v.str());
}

void record_info(const std::string& name, const std::string& value) {
  ::testing::Test::RecordProperty("info." + name, value);
}

bool wait_until(const std::function<bool()>& pred, int64_t timeout_ns) {
  const int64_t deadline = os::nanotime() + timeout_ns;
  for (;;) {
    if (pred()) return true;
    if (os::nanotime() >= deadline) return pred();
    os::sleep_ns(kMs);
  }
}

Runner::Runner(std::function<void()> f) : fn(std::move(f)) {
  EXPECT_EQ(os::thread_start(&t, body, this), os::Error::ok);
}

void Runner::join() { EXPECT_EQ(os::thread_join(t), os::Error::ok); }

std::string test_id(const std::string& suite, const std::string& name) {
  std::string s = suite;
  if (s.find('/') != std::string::npos) {
    for (char& c : s)
      if (c == '/') c = '.';
  } else if (size_t u = s.find('_'); u != std::string::npos) {
    s[u] = '.';
  }
  return s + "." + name;
}

namespace {

// ---------------------------------------------------------------- expectations
struct Expectation {
  std::string kind = "pass";  // pass | skip | xfail
  std::string reason;
};

struct Rule {
  std::string pattern;
  Expectation exp;
};

bool glob_match(const char* p, const char* s) {
  for (; *p != '\0'; ++p, ++s) {
    if (*p == '*') {
      for (;; ++s) {
        if (glob_match(p + 1, s)) return true;
        if (*s == '\0') return false;
      }
    }
    if (*s == '\0' || *p != *s) return false;
  }
  return *s == '\0';
}

const char* find_file(const std::string& name) {
  for (const ExpectationFile* f = kExpectationFiles; f->name != nullptr; ++f)
    if (name == f->name) return f->text;
  return nullptr;
}

// Format, one rule per line:  <id-glob>  SKIP|XFAIL  <reason>
// plus "include <file>" and '#' comments. Later rules override earlier ones,
// so a leg file can include a shared file and then refine it.
void parse_expectations(const std::string& file, std::vector<Rule>& rules, int depth) {
  const char* text = find_file(file);
  if (text == nullptr || depth > 8) {
    std::fprintf(stderr, "keel conformance: expectations file '%s' not found (leg %s)\n", file.c_str(), kLeg);
    std::exit(3);
  }
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (size_t h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string first, kind;
    if (!(ls >> first)) continue;
    if (first == "include") {
      std::string inc;
      ls >> inc;
      parse_expectations(inc, rules, depth + 1);
      continue;
    }
    ls >> kind;
    std::string reason;
    std::getline(ls, reason);
    size_t b = reason.find_first_not_of(" \t");
    reason = b == std::string::npos ? std::string() : reason.substr(b);
    if ((kind != "SKIP" && kind != "XFAIL") || reason.empty()) {
      std::fprintf(stderr, "keel conformance: %s:%d: expected '<id> SKIP|XFAIL <reason>'\n", file.c_str(), lineno);
      std::exit(3);
    }
    rules.push_back({first, {kind == "SKIP" ? "skip" : "xfail", reason}});
  }
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = [] {
    std::vector<Rule> v;
    parse_expectations(std::string(kLeg) + ".txt", v, 0);
    return v;
  }();
  return r;
}

Expectation expectation_for(const std::string& id) {
  Expectation e;
  for (const Rule& r : rules())
    if (glob_match(r.pattern.c_str(), id.c_str())) e = r.exp;
  return e;
}

// -------------------------------------------------------------------- records
std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += char(c);
        }
    }
  }
  return o;
}

void write_atomically(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::path tmp = path;
  tmp += ".tmp" + std::to_string(os::thread_id());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

class ResultWriter : public ::testing::EmptyTestEventListener {
 public:
  explicit ResultWriter(std::filesystem::path dir) : dir_(std::move(dir)) {}

  bool all_as_expected() const { return unexpected_ == 0; }
  int ran() const { return ran_; }

  void OnTestProgramStart(const ::testing::UnitTest& unit) override {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    // Every process knows the full list; the collect step uses it to find
    // tests that left no record at all.
    std::string ids;
    for (int i = 0; i < unit.total_test_suite_count(); ++i) {
      const ::testing::TestSuite* s = unit.GetTestSuite(i);
      for (int j = 0; j < s->total_test_count(); ++j)
        ids += test_id(s->name(), s->GetTestInfo(j)->name()) + "\n";
    }
    write_atomically(dir_ / "_ids.txt", ids);
  }

  void OnTestStart(const ::testing::TestInfo& info) override {
    std::string id = test_id(info.test_suite_name(), info.name());
    Expectation e = expectation_for(id);
    write(id, info, "crashed", e, "the test process died or timed out before the test ended", 0, "");
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    const ::testing::TestResult* r = info.result();
    std::string id = test_id(info.test_suite_name(), info.name());
    Expectation e = expectation_for(id);
    std::string status = r->Skipped() ? "skip" : r->Failed() ? "fail" : "pass";
    std::string message;
    for (int i = 0; i < r->total_part_count(); ++i) {
      const ::testing::TestPartResult& p = r->GetTestPartResult(i);
      if ((status == "skip" && p.skipped()) || (status == "fail" && p.failed())) {
        message = p.message();
        break;
      }
    }
    if (status == "skip" && message.empty()) message = "(skipped without a reason: a defect)";
    if (message.size() > 400) message = message.substr(0, 400) + "...";
    std::string metrics;
    for (int i = 0; i < r->test_property_count(); ++i) {
      const ::testing::TestProperty& p = r->GetTestProperty(i);
      if (!metrics.empty()) metrics += ",";
      metrics += "\"" + json_escape(p.key()) + "\":\"" + json_escape(p.value()) + "\"";
    }
    ++ran_;
    const bool ok = status == e.kind || (status == "fail" && e.kind == "xfail");
    const bool ok_status = ok && !(status == "skip" && message.rfind("(skipped without", 0) == 0);
    if (!ok_status) ++unexpected_;
    std::string verdict = ok_status ? "ok" : "unexpected";
    std::printf("[keel] %s: %s (expected %s)%s\n", id.c_str(), status.c_str(), e.kind.c_str(),
                ok_status ? "" : "  <-- UNEXPECTED");
    write(id, info, status, e, message, r->elapsed_time(), metrics, verdict);
  }

 private:
  void write(const std::string& id, const ::testing::TestInfo& info, const std::string& status,
             const Expectation& e, const std::string& message, long long ms, const std::string& metrics,
             const std::string& verdict = "unexpected") {
    if (dir_.empty()) return;
    std::ostringstream o;
    o << "{\"id\":\"" << json_escape(id) << "\",\"gtest\":\"" << json_escape(info.test_suite_name()) << "."
      << json_escape(info.name()) << "\",\"leg\":\"" << json_escape(kLeg) << "\",\"status\":\"" << status
      << "\",\"expected\":\"" << e.kind << "\",\"expect_reason\":\"" << json_escape(e.reason)
      << "\",\"verdict\":\"" << verdict << "\",\"message\":\"" << json_escape(message)
      << "\",\"duration_ms\":" << ms << ",\"metrics\":{" << metrics << "}}\n";
    write_atomically(dir_ / (id + ".json"), o.str());
  }

  std::filesystem::path dir_;
  int unexpected_ = 0;
  int ran_ = 0;
};

}  // namespace

KC_NOINLINE int recurse_forever(int n) {
  volatile char buf[512];
  buf[0] = char(n);
  if (n == 0x7fffffff) return buf[0];  // never: keeps the recursion finite to the compiler
  return recurse_forever(n + 1) + buf[0];
}
}  // namespace keel::conformance

// Sanitizer defaults live in the binary, so a plain ctest run (no preset, no
// environment) gets the same behaviour as CI.
#if defined(KEEL_TSAN_ENABLED)
extern "C" const char* __tsan_default_options() { return "halt_on_error=1:second_deadlock_stack=1"; }
#endif

int main(int argc, char** argv) {
  using namespace keel::conformance;
  std::string results;
  bool death_child = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--keel-results=", 15) == 0) {
      results = argv[i] + 15;
      continue;
    }
    if (std::strstr(argv[i], "internal_run_death_test") != nullptr) death_child = true;
    args.push_back(argv[i]);
  }
  if (results.empty())
    if (const char* e = std::getenv("KEEL_RESULTS_DIR")) results = e;
  int n = int(args.size());
  args.push_back(nullptr);
  ::testing::InitGoogleTest(&n, args.data());
  // Death tests keep GoogleTest's default "fast" style (fork without exec) on
  // POSIX: "threadsafe" re-executes argv[0], which qemu-user cannot do for a
  // foreign binary without binfmt_misc. Each test runs in its own process, so
  // a death statement forks a process that has only the threads its own test
  // started. (Windows always spawns a child process.)
  (void)rules();  // a malformed expectations file fails at once, before any test

  auto* writer = new ResultWriter(death_child ? std::filesystem::path() : std::filesystem::path(results));
  ::testing::UnitTest::GetInstance()->listeners().Append(writer);
  int gtest_rc = RUN_ALL_TESTS();
  if (death_child) return gtest_rc;
  // Listing tests (--gtest_list_tests) runs none: succeed.
  return writer->all_as_expected() ? 0 : 1;
}
