/// The plots' colours: Okabe and Ito's palette, distinguishable with every common form of colour
/// blindness (Okabe & Ito 2008, "Color Universal Design"), in the order the plots use them.
namespace SnnFunc

/// Okabe–Ito colours as hex strings ("#0072B2"), the order in which series take them.
[<RequireQualifiedAccess>]
module Palette =
    let blue = "#0072B2"
    let orange = "#E69F00"
    let bluishGreen = "#009E73"
    let vermillion = "#D55E00"
    let reddishPurple = "#CC79A7"
    let skyBlue = "#56B4E9"
    let yellow = "#F0E442"
    let black = "#000000"

    /// The series colours in order (yellow last: it is faint on white).
    let series =
        [|
            blue
            orange
            bluishGreen
            vermillion
            reddishPurple
            skyBlue
            black
            yellow
        |]

    /// The colour of series i (cycling).
    let at (i: int) =
        series[((i % series.Length) + series.Length) % series.Length]

    let internal color (hex: string) = ScottPlot.Color.FromHex hex
