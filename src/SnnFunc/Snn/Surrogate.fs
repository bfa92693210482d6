/// Surrogate derivatives for the Heaviside spike function: the smooth stand-in that gradient-based
/// training uses where the true derivative is zero almost everywhere.
namespace SnnFunc

open System

/// A surrogate: a name for messages and the pseudo-derivative dH/dx as a tensor function (written
/// with tensor operations, so it is itself differentiable for higher-order derivatives).
type SurrogateFn =
    {
        Name: string
        Derivative: Tensor -> Tensor
        /// The closed form, when it is one of the built-in shapes: fused kernels then evaluate it
        /// directly (Custom: they call Derivative).
        Shape: Kernels.SurrogateShape
        /// The shape's parameter (beta, alpha or width).
        Parameter: float
    }

    /// A surrogate given only by its derivative function.
    static member Custom(name: string, derivative: Tensor -> Tensor) =
        {
            Name = name
            Derivative = derivative
            Shape = Kernels.SurrogateShape.Custom
            Parameter = nan
        }

/// The surrogates of the literature. sigmoid, arctan, triangle and boxcar integrate to 1 over x (the
/// height of the step they stand in for); superSpike keeps its published form (peak 1, integral
/// 2/beta); straight-through is 1 everywhere.
[<RequireQualifiedAccess>]
module Surrogate =

    let private positive (name: string) (param: string) (value: float) =
        if not (value > 0.0) || Double.IsInfinity value then
            invalidArg param $"Surrogate.%s{name}: %s{param} must be positive and finite, got %g{value}"

    /// SuperSpike / fast sigmoid (Zenke & Ganguli 2018): 1 / (beta |x| + 1)^2, peak 1 at x = 0, as in
    /// the W1 benchmark and the peer libraries.
    let superSpike (beta: float) : SurrogateFn =
        positive "superSpike" "beta" beta

        {
            Name = $"superSpike(%g{beta})"
            Derivative = fun x -> 1.0 / (x.Abs() * beta + 1.0).Square()
            Shape = Kernels.SurrogateShape.SuperSpike
            Parameter = beta
        }

    /// The fast-sigmoid surrogate: the same function as superSpike.
    let fastSigmoid (beta: float) : SurrogateFn =
        { superSpike beta with
            Name = $"fastSigmoid(%g{beta})"
        }

    /// Derivative of a logistic sigmoid of slope beta: beta σ(beta x)(1 - σ(beta x)); peak beta/4.
    let sigmoid (beta: float) : SurrogateFn =
        positive "sigmoid" "beta" beta

        {
            Name = $"sigmoid(%g{beta})"
            Derivative =
                fun x ->
                    let s = (x * beta).Sigmoid()
                    s * (1.0 - s) * beta
            Shape = Kernels.SurrogateShape.Sigmoid
            Parameter = beta
        }

    /// Derivative of (1/π) arctan(π α x / 2) + 1/2: (α/2) / (1 + (π α x / 2)^2); peak α/2.
    let arctan (alpha: float) : SurrogateFn =
        positive "arctan" "alpha" alpha

        {
            Name = $"arctan(%g{alpha})"
            Derivative = fun x -> (alpha / 2.0) / (1.0 + (x * (Math.PI * alpha / 2.0)).Square())
            Shape = Kernels.SurrogateShape.Arctan
            Parameter = alpha
        }

    /// Triangle of half-width w: max(0, 1 - |x|/w) / w (integrates to 1).
    let triangle (width: float) : SurrogateFn =
        positive "triangle" "width" width

        {
            Name = $"triangle(%g{width})"
            Derivative = fun x -> (1.0 - x.Abs() / width).Relu() / width
            Shape = Kernels.SurrogateShape.Triangle
            Parameter = width
        }

    /// Boxcar of total width w: 1/w where |x| < w/2, else 0 (integrates to 1).
    let boxcar (width: float) : SurrogateFn =
        positive "boxcar" "width" width

        {
            Name = $"boxcar(%g{width})"
            Derivative = fun x -> x.Abs().Lt(width / 2.0) / width
            Shape = Kernels.SurrogateShape.Boxcar
            Parameter = width
        }

    /// Straight-through estimator: derivative 1 everywhere.
    let straightThrough: SurrogateFn =
        {
            Name = "straightThrough"
            Derivative = fun x -> Tensor.OnesLike x
            Shape = Kernels.SurrogateShape.StraightThrough
            Parameter = 1.0
        }
