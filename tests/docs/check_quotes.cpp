// Docs quote compiled code: every fenced ```cpp block that follows a line
//   <!-- quote: path/in/repo -->
// in README.md or docs/*.md must appear verbatim in that file. Usage: check_quotes <source dir>.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

static std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: check_quotes <source dir>\n";
        return 2;
    }
    const fs::path root = argv[1];
    std::vector<fs::path> docs = {root / "README.md"};
    for (const auto& e : fs::directory_iterator(root / "docs"))
        if (e.path().extension() == ".md") docs.push_back(e.path());
    const std::string marker = "<!-- quote: ", fence = "```cpp\n", close = "```";
    int quotes = 0, stale = 0;
    for (const auto& doc : docs) {
        const std::string text = read(doc);
        for (std::size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
            const std::size_t name_end = text.find(" -->\n", at);
            const std::string source = text.substr(at + marker.size(), name_end - at - marker.size());
            const std::size_t code_begin = name_end + 5 + fence.size();
            if (text.compare(name_end + 5, fence.size(), fence) != 0) {
                std::cerr << doc << ": quote marker for " << source << " is not followed by a ```cpp block\n";
                ++stale;
                continue;
            }
            const std::string code = text.substr(code_begin, text.find(close, code_begin) - code_begin);
            ++quotes;
            if (read(root / source).find(code) == std::string::npos) {
                std::cerr << doc << ": this block quoted from " << source << " is not in that file:\n" << code << "\n";
                ++stale;
            }
        }
    }
    std::cout << quotes << " quoted blocks checked, " << stale << " stale\n";
    return quotes > 0 && stale == 0 ? 0 : 1;
}
