#include <gtest/gtest.h>

#include "protocol/retry.hpp"

using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::protocol::FailureBudget;

TEST(FailureBudget, AllowsTheFixedNumberThenGivesUpWithTheCounts) {
    FailureBudget budget(3, 8);
    Error timeout(ErrorKind::Timeout, "write page: no answer");
    for (int i = 0; i < 3; ++i) budget.failure(timeout, 0x400);
    try {
        budget.failure(timeout, 0x400);
        FAIL() << "the fourth failure should spend the budget";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Timeout);
        EXPECT_NE(std::string(e.what()).find("gave up: 4 exchanges failed, 0 worked"), std::string::npos) << e.what();
        EXPECT_EQ(e.address(), std::optional<uint32_t>(0x400));
        EXPECT_FALSE(e.hint().empty());
    }
}

TEST(FailureBudget, EachEightExchangesThatWorkedAllowOneMoreFailure) {
    FailureBudget budget(2, 8);
    Error damaged(ErrorKind::Protocol, "read page: bad reply");
    for (int i = 0; i < 16; ++i) budget.success();
    for (int i = 0; i < 4; ++i) EXPECT_NO_THROW(budget.failure(damaged));
    EXPECT_THROW(budget.failure(damaged), Error);
    EXPECT_EQ(budget.failures(), 5);
    EXPECT_EQ(budget.successes(), 16);
}
