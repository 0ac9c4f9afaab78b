#pragma once
// Test helpers for limits that must not touch the test process: run a function in a forked child
// (a lowered rlimit stays there), and set an environment variable for a scope.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace testing {

// Runs f in a forked child and returns its exit code (128 + signal if it died) and the text it
// put in `out`. The child must not use OpenMP (its threads stay in the parent): reading files and
// throwing is what these tests need.
inline std::pair<int, std::string> in_child(const std::function<int(std::string& out)>& f) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        std::string out;
        int code = 99;
        try {
            code = f(out);
        } catch (const std::exception& e) { out = std::string("unexpected exception: ") + e.what(); }
        if (!out.empty() && ::write(fds[1], out.data(), out.size()) < 0) code = 98;
        ::_exit(code);
    }
    ::close(fds[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, std::size_t(n));
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), text};
}

// Sets (or, with nullptr, unsets) an environment variable for a scope.
struct ScopedEnv {
    std::string name;
    std::optional<std::string> saved;
    ScopedEnv(const char* n, const char* value) : name(n) {
        if (const char* v = std::getenv(n)) saved = v;
        if (value)
            ::setenv(n, value, 1);
        else
            ::unsetenv(n);
    }
    ~ScopedEnv() {
        if (saved)
            ::setenv(name.c_str(), saved->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
};

}  // namespace testing
