// 02_tape_by_hand: what the tape records for y = sum(sign(w) * x), and what backward computes.
//
// Forward records three ops (sign, mul, sum_all). Backward walks them in reverse:
//   sum_all: d y / d p    = 1            (p = sign(w) * x)
//   mul:     d y / d s    = x            (s = sign(w))       and d y / d x = s
//   sign:    d y / d w    = x * ste'(w)  (straight-through: the surrogate's derivative)
// With w = [0.5, -2, 0.3] and x = [1, 2, 3]: sign(w) = [1, -1, 1], y = 1 - 2 + 3 = 2, and
//   identity STE:    dw = x               = [1, 2, 3]
//   clipped STE:     dw = x * [|w| <= 1]  = [1, 0, 3]
//   ApproxSign STE:  dw = x * (2 - 2|w|)+ = [1, 0, 4.2]
#include <bitgrad/bitgrad.hpp>
#include <cstdio>

using namespace bitgrad;

int main() {
    for (Ste ste : {Ste::Identity, Ste::Clipped, Ste::ApproxSign}) {
        Var<double> w(Tensor<double>::from({3}, {0.5, -2.0, 0.3}), /*requires_grad=*/true);
        Var<double> x(Tensor<double>::from({3}, {1.0, 2.0, 3.0}), /*requires_grad=*/true);

        Tape tape;
        Var<double> s = sign(w, ste);  // record 1
        Var<double> p = mul(s, x);     // record 2
        Var<double> y = sum(p);        // record 3
        std::printf("%-12s y = %g, tape holds %zu records\n", ste_name(ste), y.item(), tape.size());

        tape.backward(y);  // seeds dy = 1, runs records 3, 2, 1
        std::printf("%-12s dw = [%g, %g, %g]   dx = [%g, %g, %g]\n", "", w.grad()[0], w.grad()[1], w.grad()[2],
                    x.grad()[0], x.grad()[1], x.grad()[2]);
    }
    return 0;
}
