/**
 * Globally adaptive Gauss–Kronrod (G10/K21) quadrature with the tolerances of
 * scipy.integrate.quad, which datasketch uses to choose LSH bands. The integrands there
 * are smooth polynomials, so this converges to the same values to ~1e-10.
 */

// QUADPACK qk21 abscissae (positive half, descending) and weights.
const XGK = [
  0.995657163025808080735527280689003, 0.973906528517171720077964012084452, 0.930157491355708226001207180059508,
  0.865063366688984510732096688423493, 0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
  0.562757134668604683339000099272694, 0.433395394129247190799265943165784, 0.294392862701460198131126603103866,
  0.14887433898163121088482600112972, 0,
];
const WGK = [
  0.011694638867371874278064396062192, 0.03255816230796472747881897245939, 0.05475589657435199603138130024458,
  0.07503967481091995276704314091619, 0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
  0.123491976262065851077834943975149, 0.134709217311473325928054001771707, 0.142775938577060080797094273138717,
  0.147739104901338491374841515972068, 0.149445554002916905664936468389821,
];
// 10-point Gauss weights for XGK[1], XGK[3], ..., XGK[9].
const WG = [
  0.066671344308688137593568809893332, 0.149451349150580593145776339657697, 0.219086362515982043995534934228163,
  0.269266719309996355091226921569469, 0.295524224714752870173892994651338,
];

interface Piece {
  from: number;
  to: number;
  value: number;
  error: number;
}

function kronrod21(f: (x: number) => number, from: number, to: number): Piece {
  const centre = (from + to) / 2;
  const half = (to - from) / 2;
  let kronrod = WGK[10]! * f(centre);
  let gauss = 0;
  for (let j = 0; j < 10; j++) {
    const dx = half * XGK[j]!;
    const pair = f(centre - dx) + f(centre + dx);
    kronrod += WGK[j]! * pair;
    if (j % 2 === 1) gauss += WG[(j - 1) / 2]! * pair;
  }
  return { from, to, value: kronrod * half, error: Math.abs((kronrod - gauss) * half) };
}

export function integrate(
  f: (x: number) => number,
  from: number,
  to: number,
  { epsAbs = 1.49e-8, epsRel = 1.49e-8, limit = 50 } = {},
): number {
  const pieces = [kronrod21(f, from, to)];
  for (let i = 1; i < limit; i++) {
    const value = pieces.reduce((sum, piece) => sum + piece.value, 0);
    const error = pieces.reduce((sum, piece) => sum + piece.error, 0);
    if (error <= Math.max(epsAbs, epsRel * Math.abs(value))) break;
    let worst = 0;
    for (let p = 1; p < pieces.length; p++) if (pieces[p]!.error > pieces[worst]!.error) worst = p;
    const { from: a, to: b } = pieces[worst]!;
    const middle = (a + b) / 2;
    pieces.splice(worst, 1, kronrod21(f, a, middle), kronrod21(f, middle, b));
  }
  return pieces.reduce((sum, piece) => sum + piece.value, 0);
}
