#pragma once
// Short name for what `-d sim:PROTOCOL[:CHIP]` uses: InProcessOptions and open_in_process().
#include "sim/in_process_link.hpp"
