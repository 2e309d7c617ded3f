//! TODO: the driver.
