// Writes the fuzz targets' generated seed corpus: `fuzz_seed_gen <dir>` fills <dir>/files with the
// checkpoints and IDX files of fuzz/seeds.h (made with the library, so none is committed).
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "fuzz/seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/files";
  ::mkdir(argv[1], 0777);
  ::mkdir(dir.c_str(), 0777);
  const auto seeds = ct_fuzz::files_seeds();
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = dir + "/seed-" + std::to_string(i);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(seeds[i].data(), 1, seeds[i].size(), f) != seeds[i].size()) {
      std::perror(path.c_str());
      return 1;
    }
    std::fclose(f);
  }
  std::printf("fuzz_seed_gen: %zu seeds in %s\n", seeds.size(), dir.c_str());
  return 0;
}
