//! `tern compare` on the int8 CNN fixture: every reference tensor is matched,
//! the output is close to f32, the table is ordered by error, and the CSV and
//! PNG are written (through the command line, in-process).

use tern_export::compare;
use tern_export::convert::Precision;
use tern_export::models::ModelKind;
use tern_export::plot;

use tern_tests::{convert_fixture, fixture, write_scratch};

const DATA: &str = "fashion-mnist:test:20";

#[test]
fn int8_cnn_per_tensor_report() {
    let converted = convert_fixture(ModelKind::Cnn, Precision::Int8);
    let tern = write_scratch("compare", "cnn-int8.tern", &converted.bytes);
    let dir = tern.parent().expect("scratch dir").to_owned();
    let onnx = fixture(ModelKind::Cnn);
    let samples = tern_export::tools::calibration_samples(DATA).expect("test images");
    assert_eq!(samples.len(), 20);

    let report = compare::compare(&onnx, &tern, &samples).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.invocations, report.batch), (20, 1));

    // Every reference tensor (the input and every f32 op output) has an int8 counterpart,
    // and every op of the int8 model was compared.
    assert!(report.reference_tensors >= converted.file.ops.len());
    assert!(
        report.unmatched_reference.is_empty(),
        "unmatched reference tensors: {:?}",
        report.unmatched_reference
    );
    assert!(
        report.unmatched_candidate.is_empty(),
        "{:?}",
        report.unmatched_candidate
    );
    for k in 0..converted.file.ops.len() {
        assert!(
            report.rows.iter().any(|r| r.op_index == Some(k)),
            "op {k} not compared"
        );
    }
    assert!(
        report
            .rows
            .iter()
            .filter(|r| r.op_index.is_some())
            .all(|r| r.is_int8())
    );

    // The final output stays close to f32.
    let out = report.output().expect("model output compared");
    assert_eq!(out.name, "probabilities");
    assert!(out.sqnr_db > 15.0, "output SQNR {:.2} dB", out.sqnr_db);
    assert!(out.cosine > 0.99, "output cosine {:.5}", out.cosine);
    for r in &report.rows {
        assert!(
            r.sqnr_db.is_finite() && r.cosine <= 1.0 && r.max_abs_err >= 0.0,
            "{r:?}"
        );
    }

    // Largest error first, in the report and in the printed table.
    let sorted = report.sorted();
    assert_eq!(sorted.len(), report.rows.len());
    assert!(sorted.windows(2).all(|w| w[0].sqnr_db <= w[1].sqnr_db));
    let table = report.table();
    let printed: Vec<f64> = table
        .lines()
        .skip(1)
        .take(report.rows.len())
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let i = cols
                .iter()
                .position(|c| *c == "int8" || *c == "f32")
                .unwrap_or_else(|| panic!("no precision column in '{line}'"));
            cols[i + 1]
                .parse()
                .unwrap_or_else(|_| panic!("SQNR in '{line}'"))
        })
        .collect();
    assert_eq!(printed.len(), report.rows.len(), "{table}");
    assert!(printed.windows(2).all(|w| w[0] <= w[1]), "{table}");

    // The command writes the CSV (graph order) and the plot.
    let png_path = dir.join("cnn-int8.png");
    let csv_path = dir.join("cnn-int8.csv");
    tern_export::cli::run([
        "tern".as_ref(),
        "compare".as_ref(),
        onnx.as_os_str(),
        tern.as_os_str(),
        "--data".as_ref(),
        DATA.as_ref(),
        "--plot".as_ref(),
        png_path.as_os_str(),
        "--csv".as_ref(),
        csv_path.as_os_str(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let csv = std::fs::read_to_string(&csv_path).expect("CSV written");
    let names: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    let expected: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, expected);

    let file = std::io::BufReader::new(std::fs::File::open(&png_path).expect("PNG written"));
    let mut reader = png::Decoder::new(file)
        .read_info()
        .expect("PNG header decodes");
    let info = reader.info();
    assert_eq!(info.width, plot::width_for(report.rows.len()));
    assert_eq!(info.height, plot::HEIGHT);
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut buf).expect("PNG image decodes");
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    // The int8 bars are drawn.
    let int8_pixels = buf[..frame.buffer_size()]
        .chunks_exact(3)
        .filter(|p| *p == compare::INT8_COLOR.as_slice())
        .count();
    assert!(int8_pixels > 1000, "{int8_pixels} int8-coloured pixels");
}
