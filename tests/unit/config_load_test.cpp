#include <gtest/gtest.h>
#include "eqr/config/load.h"
TEST(Placeholder, Defaults) { EXPECT_EQ(eqr::config::RunConfig{}.arch.hidden_size, 512); }
