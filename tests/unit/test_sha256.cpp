// SHA-256 against the FIPS 180-2 / NIST example digests.
#include <catch2/catch.hpp>

#include <string>

#include "core/error.h"
#include "data/sha256.h"
#include "temp_dir.h"

using attnlab::data::sha256_hex;

TEST_CASE("sha256 matches the published test vectors", "[data]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the length no longer fits the first padding block.
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 fed in pieces of every size, or read from a file, gives the same published digests", "[data]") {
  const std::string million(1000000, 'a');
  for (size_t piece : {1, 3, 63, 64, 65, 1000, 65537}) {
    attnlab::data::Sha256 sha;
    for (size_t off = 0; off < million.size(); off += piece) sha.update(std::string_view(million).substr(off, piece));
    CHECK(sha.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
  attnlab::test::TempDir dir;
  attnlab::test::write_bytes(dir.path / "m", million);
  CHECK(attnlab::data::sha256_file(dir.path / "m") == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK_THROWS_AS(attnlab::data::sha256_file(dir.path / "missing"), attnlab::Error);
}
