// convtape::Error: message, source location, and CT_CHECK formatting.
#include "support/test_util.h"

using namespace convtape;

TEST_CASE("CT_CHECK throws an Error with the message and where it was raised", "[error]") {
  try {
    CT_CHECK(1 + 1 == 3, "demo: expected {}, got {}", 3, 2);
    FAIL("CT_CHECK did not throw");
  } catch (const Error& e) {
    CHECK(e.message() == "demo: expected 3, got 2");
    CHECK(std::string(e.file()) == "core/error_test.cpp");
    CHECK(e.line() > 0);
    CHECK(std::string(e.what()).find("demo: expected 3, got 2 (core/error_test.cpp:") == 0);
  }
  CHECK_NOTHROW([] { CT_CHECK(true, "never"); }());
  const std::runtime_error& base = Error("x", __FILE__, 1);
  CHECK(std::string(base.what()).find("x (") == 0);
}
